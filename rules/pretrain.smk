rule pretrain_data:
    """A pre-training's data: its upstream tasks' examples without the downstream reserves and
    held-out texts, with a manifest (sizes, settings hash, the file's sha256); one node for
    every backbone's run of that pre-training. On the submit host, like the splits."""
    localrule: True
    input:
        pretrain_data_files,
    output:
        examples=f"{RESULTS}/pretrain-data/{{pretraining}}/examples.json.gz",
        manifest=f"{RESULTS}/pretrain-data/{{pretraining}}/manifest.json",
    params:
        settings=lambda wc: json.dumps(pretrain_data_settings(config, wc.pretraining)),
        data_dir=DATA,
        out_dir=lambda wc, output: os.path.dirname(output.manifest),
    priority: 50
    conda:
        "../environment.yml"
    log:
        f"{RESULTS}/logs/pretrain_data/{{pretraining}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/pretrain_data/{{pretraining}}.tsv"
    shell:
        "python -m replicate pretrain-data --settings {params.settings:q} --data-dir {params.data_dir:q}"
        " --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule pretrain:
    """One pre-training (MP2's modular prompts, SPoT's / PPT's single prompts, MPT's teachers
    or its distilled decomposed prompts): the checkpoint every downstream cell of its methods
    starts from. A killed run resumes from resume.pt in its folder to the same outputs;
    the job's wall time is in pretrain.time.json beside them (not an output here, so
    finished runs from before it existed are not rerun)."""
    input:
        manifest=f"{RESULTS}/pretrain-data/{{pretraining}}/manifest.json",
        # a distilling run (MPT) starts after its teachers' pre-training
        teachers=lambda wc: teachers_checkpoint(config, wc.pretraining, wc.backbone) or [],
    output:
        checkpoint=f"{RESULTS}/pretrain/{{pretraining}}/{{backbone}}/checkpoint.pt",
        summary=f"{RESULTS}/pretrain/{{pretraining}}/{{backbone}}/pretrain.json",
    params:
        settings=lambda wc: json.dumps(pretrain_settings(config, wc.pretraining, wc.backbone)),
        data_dir=DATA,
        out_dir=lambda wc, output: os.path.dirname(output.checkpoint),
        data=lambda wc, input: os.path.dirname(input.manifest),
        teachers=lambda wc, input: f"--teachers {shlex.quote(input.teachers)}" if input.teachers else "",
    threads: config["threads_per_job"]
    # first in line: every cell of its methods waits for it
    priority: 50
    conda:
        "../environment.yml"
    log:
        f"{RESULTS}/logs/pretrain/{{pretraining}}_{{backbone}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/pretrain/{{pretraining}}_{{backbone}}.tsv"
    shell:
        "python -m replicate pretrain --settings {params.settings:q} --data-dir {params.data_dir:q}"
        " --data {params.data:q} --out-dir {params.out_dir:q} {params.teachers} > {log:q} 2>&1"
