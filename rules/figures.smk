# MP2's figures, each drawn from logged tensors or result files by `python -m replicate figure`.


rule mp2_fig5_figure:
    """Fig 5: the upstream tasks clustered by their learned binarised shallow router."""
    localrule: True
    input:
        lambda wc: f"{pretrain_dir(config, FIG5_PRETRAINING, config['grid']['backbone'])}/pretrain.json",
    output:
        report(
            f"{RESULTS}/figures/mp2_fig5.png",
            caption="../docs/report/mp2_fig5.rst",
            category="Figures",
            subcategory="MP2",
            labels={"figure": "Fig 5: router dendrogram"},
        ),
        multiext(f"{RESULTS}/figures/mp2_fig5", ".pdf", ".json"),
    params:
        prefix=lambda wc, output: output[0].removesuffix(".png"),
    conda:
        "../environment.yml"
    log:
        f"{RESULTS}/logs/figures/mp2_fig5.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures/mp2_fig5.tsv"
    shell:
        "python -m replicate figure mp2-fig5 {input:q} --out-prefix {params.prefix:q} > {log:q} 2>&1"


rule mp2_fig3_figure:
    """Fig 3: dev score across MP2's two tuning stages (gradient descent and black-box), per method and task."""
    localrule: True
    input:
        lambda wc: [path for group in groups(config) if group.method in MP2_TWO_STAGE for path in result_files(group)],
    output:
        report(
            f"{RESULTS}/figures/mp2_fig3.png",
            caption="../docs/report/mp2_fig3.rst",
            category="Figures",
            subcategory="MP2",
            labels={"figure": "Fig 3: two-stage curves"},
        ),
        multiext(f"{RESULTS}/figures/mp2_fig3", ".pdf", ".csv"),
    params:
        prefix=lambda wc, output: output[0].removesuffix(".png"),
    conda:
        "../environment.yml"
    log:
        f"{RESULTS}/logs/figures/mp2_fig3.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures/mp2_fig3.tsv"
    shell:
        "python -m replicate figure mp2-fig3 {input:q} --out-prefix {params.prefix:q} > {log:q} 2>&1"


rule mp2_fig5:
    localrule: True
    input:
        with_top_level_copies(list(rules.mp2_fig5_figure.output)),


rule mp2_fig3:
    localrule: True
    input:
        with_top_level_copies(list(rules.mp2_fig3_figure.output)),


if FIGURE_COPIES:

    rule figure_copy:
        """A figure's image, copied into the top-level figures/ folder (README's layout). The original
        in results_dir stays the source of truth (the report shows it); the copy is remade when it is
        redrawn."""
        localrule: True
        input:
            f"{RESULTS}/figures/{{figure}}.{{ext}}",
        output:
            f"{FIGURE_COPIES}/{{figure}}.{{ext}}",
        wildcard_constraints:
            figure=r"[a-z0-9_]+",
            ext="png|pdf",
        conda:
            "../environment.yml"
        log:
            f"{RESULTS}/logs/figures/{{figure}}.{{ext}}.copy.log",
        shell:
            "cp {input:q} {output:q} > {log:q} 2>&1"
