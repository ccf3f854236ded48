rule train:
    """All seeds of one (method, backbone, task, shot): one job, one result file per seed.
    Prompt methods batch the seeds through one frozen backbone; model tuning loops."""
    input:
        splits=lambda wc: split_files(wc.task, wc.shot),
        data=task_data_files,
        pretrained=pretrained_checkpoint,
    output:
        expand(SINGLE_TASK_CELLS, seed=SEEDS),
    params:
        settings=lambda wc: json.dumps(cell_settings(config, group_of(wc))),
        seeds=" ".join(map(str, SEEDS)),
        data_dir=DATA,
        # quoted here, as a results_dir may hold a space; "" leaves the flag out
        pretrained=lambda wc, input: f"--pretrained {shlex.quote(str(input.pretrained))}" if input.pretrained else "",
    # The job runs threads_per_job threads even where Snakemake grants fewer (--cores 1):
    # the count is in the cell's config hash, so --cores never changes a number.
    threads: config["threads_per_job"]
    conda:
        "../environment.yml"
    log:
        f"{RESULTS}/logs/train/{{backbone}}/{{task}}_shot{{shot}}_{{method}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{backbone}}/{{task}}_shot{{shot}}_{{method}}.tsv"
    shell:
        "python -m replicate train --settings {params.settings:q} --seeds {params.seeds}"
        " --splits {input.splits:q} --out {output:q} --data-dir {params.data_dir:q} {params.pretrained}"
        " > {log:q} 2>&1"


# One rule per multi-task method of the grid (its task set fixes the outputs): every task
# and every seed of one (method, backbone, shot) in one job, one result per (task, seed),
# and per seed the tested prompts of its rows (what the masking evaluation reads).
for _method, _tasks in TASK_SET_METHODS.items():

    rule:
        name:
            f"train_set_{_method.replace('-', '_')}"
        input:
            splits=lambda wc, tasks=_tasks: [p for t in tasks for p in split_files(t, wc.shot)],
            data=lambda wc, tasks=_tasks: [f for t in tasks for f in data_files_of(t)],
        output:
            cells=[
                f"{RESULTS}/cells/{{backbone}}/{task}/shot{{shot}}/{_method}/seed{seed}.json"
                for task in _tasks
                for seed in SEEDS
            ],
            states=[f"{RESULTS}/states/{{backbone}}/shot{{shot}}/{_method}/seed{seed}.pt" for seed in SEEDS],
        params:
            settings=lambda wc, m=_method, tasks=_tasks: json.dumps(
                task_set_settings(config, TaskSetGroup(m, wc.backbone, parse_shot(wc.shot), tuple(tasks)))
            ),
            seeds=" ".join(map(str, SEEDS)),
            data_dir=DATA,
        threads: config["threads_per_job"]
        conda:
            "../environment.yml"
        log:
            f"{RESULTS}/logs/train/{{backbone}}/set_shot{{shot}}_{_method}.log",
        benchmark:
            f"{RESULTS}/benchmarks/train/{{backbone}}/set_shot{{shot}}_{_method}.tsv"
        shell:
            "python -m replicate train-set --settings {params.settings:q} --seeds {params.seeds}"
            " --splits {input.splits:q} --out {output.cells:q} --states {output.states:q}"
            " --data-dir {params.data_dir:q} > {log:q} 2>&1"
