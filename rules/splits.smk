rule split:
    """Few-shot train/dev/test manifests of one (task, shot), one per seed. Local on a
    cluster: seconds of work, and the submit host is the one with internet for the Hub."""
    localrule: True
    input:
        task_data_files,
    output:
        expand(
            "{results}/splits/{{task}}/shot{{shot}}/seed{seed}.json",
            results=RESULTS,
            seed=SEEDS,
        ),
    params:
        settings=lambda wc: json.dumps(split_settings(config, wc.task, parse_shot(wc.shot))),
        seeds=" ".join(map(str, SEEDS)),
        data_dir=DATA,
    conda:
        "../environment.yml"
    log:
        f"{RESULTS}/logs/split/{{task}}_shot{{shot}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/split/{{task}}_shot{{shot}}.tsv"
    shell:
        "python -m replicate split --settings {params.settings:q} --seeds {params.seeds}"
        " --data-dir {params.data_dir:q} --out {output:q} > {log:q} 2>&1"
