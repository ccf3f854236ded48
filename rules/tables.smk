rule paper_table:
    """One paper table, regenerated in the paper's layout from this run's cells (mean ± std
    over seeds), and its cell-by-cell diff against the published numbers."""
    localrule: True
    input:
        lambda wildcards: table_inputs(wildcards.paper, wildcards.table),
    output:
        # the files of TABLE_EXTENSIONS (rules/common.smk), .md first (the prefix below); the report
        # (`snakemake --report`) shows each table and its diff from their CSV
        multiext(f"{RESULTS}/tables/{{paper}}_table{{table}}", ".md", ".tex", ".diff.md"),
        report(
            f"{RESULTS}/tables/{{paper}}_table{{table}}.csv",
            caption="../docs/report/table.rst",
            category=paper_category,
            subcategory="Table {table}",
            labels={"file": "regenerated table"},
        ),
        report(
            f"{RESULTS}/tables/{{paper}}_table{{table}}.diff.csv",
            caption="../docs/report/diff.rst",
            category=paper_category,
            subcategory="Table {table}",
            labels={"file": "diff against the paper"},
        ),
    wildcard_constraints:
        paper="|".join(PAPERS),
        table=r"[0-9a-z]+",
    params:
        config_json=json.dumps(config),
        prefix=lambda wildcards, output: output[0].removesuffix(".md"),
        paper_name=lambda wildcards: PAPER_SETUPS[wildcards.paper].name,  # the report's captions
    conda:
        "../environment.yml"
    log:
        f"{RESULTS}/logs/tables/{{paper}}_table{{table}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/tables/{{paper}}_table{{table}}.tsv"
    shell:
        "python -m replicate aggregate --config-json {params.config_json:q} --paper {wildcards.paper:q}"
        " --table {wildcards.table:q} --out-prefix {params.prefix:q} > {log:q} 2>&1"


# One named target per paper table: `snakemake mpt_table1`, `snakemake compt_tablea1`, ...
for _paper, _table in PAPER_TABLES:

    rule:
        name:
            f"{_paper}_table{_table}"
        localrule: True
        input:
            table_files(_paper, _table),


rule table3:
    """MP2 Table 3 (mp2_table3), and MP2's figures when the grid has MP2: the router
    dendrogram (Fig 5) and the two-stage curves (Fig 3)."""
    localrule: True
    input:
        table_files("mp2", "3"),
        mp2_figure_files(),


rule tables:
    """Every paper table of which this run regenerates at least one row (each with its diff)."""
    localrule: True
    input:
        [table_files(paper, table) for paper, table in PAPER_TABLES if regenerated_methods(config, paper, table)],


rule spot_retrieval:
    """SPoT's retrieval (SPoT §4): the source prompt each seed of spot-retrieval took, its
    similarity ranking and its score, next to spot and pt (whichever the grid has)."""
    localrule: True
    input:
        [path for group in groups(config) if group.method in RETRIEVAL_COMPARED for path in result_files(group)],
    output:
        f"{RESULTS}/tables/spot_retrieval.md",
        report(
            f"{RESULTS}/tables/spot_retrieval.csv",
            caption="../docs/report/spot_retrieval.rst",
            category="SPoT retrieval",
        ),
    params:
        config_json=json.dumps(config),
        prefix=lambda wildcards, output: output[0].removesuffix(".md"),
    conda:
        "../environment.yml"
    log:
        f"{RESULTS}/logs/tables/spot_retrieval.log",
    benchmark:
        f"{RESULTS}/benchmarks/tables/spot_retrieval.tsv"
    shell:
        "python -m replicate retrieval-report --config-json {params.config_json:q}"
        " --out-prefix {params.prefix:q} > {log:q} 2>&1"
