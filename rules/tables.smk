rule mp2_table3:
    """MP2 Table 3, regenerated (methods x tasks, two tracks, mean ± std over seeds), and its
    cell-by-cell diff against the published numbers."""
    input:
        all_result_files(),
    output:
        multiext(f"{RESULTS}/tables/table3", ".md", ".csv", ".tex", ".diff.md", ".diff.csv"),
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


rule table3:
    """Alias of mp2_table3."""
    input:
        rules.mp2_table3.output,


rule tables:
    """Every paper table that has regenerated rows (each with its diff)."""
    input:
        rules.mp2_table3.output,
