# ComPT's masking evaluation and its source-prompt ablation heatmaps (Figs 3 and 4), drawn
# from the tested prompts of the grid's multi-task jobs (rules/train.smk, train_set_<method>).


# the shot of the paper's heatmaps (16), or the grid's first where it has none
COMPT_FIG_SHOT = 16 if 16 in config["grid"]["shots"] else config["grid"]["shots"][0]
COMPT_FIGURES = {  # figure: (compositions, the evaluation it draws, title)
    "compt_fig3": (("ssum",), "masking", "SSUM: one source kept (private masked), all sources, private, total"),
    "compt_fig4": (("msum", "mcat"), "masking", "MSUM and MCAT: one source kept with the private, total"),
    "compt_figa1": (("ssum",), "cross-task", "SSUM: each task's prompt (columns) on each task's test set (rows)"),
}


rule masking:
    """One trained task set: every mask of every task's prompt (masking), or every task's
    prompt on every other task (cross-task)."""
    input:
        splits=lambda wc: [p for t in TASK_SET_METHODS[wc.method] for p in split_files(t, wc.shot)],
        states=expand(f"{RESULTS}/states/{{{{backbone}}}}/shot{{{{shot}}}}/{{{{method}}}}/seed{{seed}}.pt", seed=SEEDS),
        data=lambda wc: [f for t in TASK_SET_METHODS[wc.method] for f in data_files_of(t)],
    output:
        report(
            f"{RESULTS}/{{evaluation}}/{{backbone}}/shot{{shot}}/{{method}}.csv",
            caption="../docs/report/masking.rst",
            category="ComPT masking",
            subcategory="{evaluation}",
            labels={"method": "{method}", "shot": "{shot}"},
        ),
        f"{RESULTS}/{{evaluation}}/{{backbone}}/shot{{shot}}/{{method}}.confusion.csv",
        f"{RESULTS}/{{evaluation}}/{{backbone}}/shot{{shot}}/{{method}}.router.csv",
    params:
        settings=lambda wc: json.dumps(
            task_set_settings(
                config,
                TaskSetGroup(wc.method, wc.backbone, parse_shot(wc.shot), tuple(TASK_SET_METHODS[wc.method])),
            )
        ),
        seeds=" ".join(map(str, SEEDS)),
        prefix=lambda wc, output: output[0].removesuffix(".csv"),
        data_dir=DATA,
        cross=lambda wc: "--cross-task" if wc.evaluation == "cross-task" else "",
    wildcard_constraints:
        method="|".join(TASK_SET_METHODS) or "(?!)",
        evaluation="masking|cross-task",
    threads: config["threads_per_job"]
    conda:
        "../environment.yml"
    log:
        f"{RESULTS}/logs/{{evaluation}}/{{backbone}}/shot{{shot}}_{{method}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{evaluation}}/{{backbone}}/shot{{shot}}_{{method}}.tsv"
    shell:
        "python -m replicate masking --settings {params.settings:q} --seeds {params.seeds}"
        " --splits {input.splits:q} --states {input.states:q} --out-prefix {params.prefix:q}"
        " --data-dir {params.data_dir:q} {params.cross} > {log:q} 2>&1"


for _figure, (_compositions, _evaluation, _title) in COMPT_FIGURES.items():
    _panels = compt_panels(_compositions)

    rule:
        name:
            f"{_figure}_figure"
        localrule: True
        input:
            [f"{RESULTS}/{_evaluation}/{config['grid']['backbone']}/shot{COMPT_FIG_SHOT}/{m}.csv" for m in _panels],
        output:
            report(
                f"{RESULTS}/figures/{_figure}.png",
                caption="../docs/report/compt_heatmap.rst",
                category="Figures",
                subcategory="ComPT heatmaps",
                labels={"figure": _title},
            ),
            f"{RESULTS}/figures/{_figure}.pdf",
            f"{RESULTS}/figures/{_figure}.csv",
        params:
            prefix=lambda wc, output: output[0].removesuffix(".png"),
            title=_title,
        conda:
            "../environment.yml"
        log:
            f"{RESULTS}/logs/figures/{_figure}.log",
        benchmark:
            f"{RESULTS}/benchmarks/figures/{_figure}.tsv"
        shell:
            "python -m replicate figure compt-masking {input:q} --out-prefix {params.prefix:q}"
            " --title {params.title:q} > {log:q} 2>&1"

    rule:
        name:
            _figure
        localrule: True
        input:
            with_top_level_copies([f"{RESULTS}/figures/{_figure}{ext}" for ext in (".png", ".pdf", ".csv")])
            if _panels
            else [],


rule compt_masking:
    """The masking evaluation of every trained task set of the grid (every method and shot)."""
    localrule: True
    input:
        [
            f"{RESULTS}/masking/{config['grid']['backbone']}/shot{shot}/{m}.csv"
            for m in TASK_SET_METHODS
            for shot in config["grid"]["shots"]
        ],


# ComPT's sweeps (Figs 2, 5 and 7): each a figure of the average test score over a task set
# against one field, from the runs whose config entry names the figure in `sweeps:` (the
# sweep points: config/paper-compt-sweeps.yaml declares them as variants). Not part of any
# table or default target.
COMPT_SWEEPS = {  # figure: (x, fields that split the lines, the shot it is drawn at (None: every), title)
    "compt_fig2": ("n_sources", [], 8, "Fig 2: number of source prompts (k = 8)"),
    "compt_fig5": ("shot", ["weights"], None, "Fig 5 (top): constant vs learned weights over k"),
    "compt_fig5_sources": ("n_sources", ["weights"], 16, "Fig 5 (bottom): weights over the sources (k = 16)"),
    "compt_fig7": ("private_lr", ["epochs"], 16, "Fig 7 / A2: the private prompts' learning rate (k = 16)"),
}

SWEEP_GROUPS = [g for g in groups(config) if (config["methods"].get(g.method) or {}).get("sweeps")]

for _figure, (_x, _hue, _shot, _title) in COMPT_SWEEPS.items():
    _points = [
        g
        for g in SWEEP_GROUPS
        if _figure in ((config["methods"].get(g.method) or {}).get("sweeps") or [])
        and (_shot is None or g.shot == _shot)
    ]

    rule:
        name:
            f"{_figure}_figure"
        localrule: True
        input:
            [path for g in _points for path in result_files(g)],
        output:
            report(
                f"{RESULTS}/figures/{_figure}.png",
                caption="../docs/report/sweep.rst",
                category="Figures",
                subcategory="ComPT sweeps",
                labels={"figure": _title},
            ),
            f"{RESULTS}/figures/{_figure}.pdf",
            f"{RESULTS}/figures/{_figure}.csv",
        params:
            prefix=lambda wc, output: output[0].removesuffix(".png"),
            x=_x,
            hue=" ".join(_hue),
            title=_title,
            # a count, not an empty message: "" formats to nothing, and [ -n ] alone is true
            points=len(_points),
            missing=f"no run of this config is a point of {_figure} (methods/<name>/sweeps: "
            "config/paper-compt-sweeps.yaml has them)",
        conda:
            "../environment.yml"
        log:
            f"{RESULTS}/logs/figures/{_figure}.log",
        benchmark:
            f"{RESULTS}/benchmarks/figures/{_figure}.tsv"
        shell:
            "if [ {params.points} -eq 0 ]; then echo replicate: {params.missing:q} >&2; exit 2; fi;"
            " python -m replicate figure compt-sweep {input:q} --x {params.x} --hue {params.hue}"
            " --out-prefix {params.prefix:q} --title {params.title:q} > {log:q} 2>&1"

    rule:
        name:
            _figure
        localrule: True
        input:
            with_top_level_copies([f"{RESULTS}/figures/{_figure}{ext}" for ext in (".png", ".pdf", ".csv")]),
