rule table3:
    """MP2 Table 3, regenerated: methods x tasks (two tracks), mean ± std over seeds."""
    input:
        all_result_files(),
    output:
        multiext(f"{RESULTS}/tables/table3", ".md", ".csv", ".tex"),
    params:
        config_json=json.dumps(config),
        prefix=lambda wildcards, output: output[0].removesuffix(".md"),
    conda:
        "../environment.yml"
    log:
        f"{RESULTS}/logs/table3.log",
    benchmark:
        f"{RESULTS}/benchmarks/table3.tsv"
    shell:
        "python -m replicate aggregate --config-json {params.config_json:q}"
        " --out-prefix {params.prefix:q} > {log:q} 2>&1"
