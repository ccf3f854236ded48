rule train:
    """All seeds of one (method, backbone, task, shot): one job, one result file per seed.
    Prompt methods batch the seeds through one frozen backbone; model tuning loops."""
    input:
        splits=lambda wc: split_files(wc.task, wc.shot),
        data=task_data_files,
        pretrained=pretrained_checkpoint,
    output:
        expand(
            "{results}/cells/{{backbone}}/{{task}}/shot{{shot}}/{{method}}/seed{seed}.json",
            results=RESULTS,
            seed=SEEDS,
        ),
    params:
        settings=lambda wc: json.dumps(cell_settings(config, group_of(wc))),
        seeds=" ".join(map(str, SEEDS)),
        data_dir=DATA,
        pretrained=lambda wc, input: f"--pretrained {input.pretrained}" if input.pretrained else "",
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
