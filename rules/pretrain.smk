rule pretrain:
    """One multi-task pre-training of modular prompts (MP2): the checkpoint every downstream
    cell of its methods starts from. A killed run resumes from resume.pt in its folder."""
    input:
        pretrain_data_files,
    output:
        checkpoint=f"{RESULTS}/pretrain/{{pretraining}}/{{backbone}}/checkpoint.pt",
        summary=f"{RESULTS}/pretrain/{{pretraining}}/{{backbone}}/pretrain.json",
    params:
        settings=lambda wc: json.dumps(pretrain_settings(config, wc.pretraining, wc.backbone)),
        data_dir=DATA,
        out_dir=lambda wc, output: os.path.dirname(output.checkpoint),
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
        " --out-dir {params.out_dir:q} > {log:q} 2>&1"
