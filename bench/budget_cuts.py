"""What budget cuts would save on a finished `make table3` run, estimated from its own job times.

    python bench/budget_cuts.py [--results results] [--config config/config.yaml]

Reads each training and pre-training job's wall seconds from ``<results>/benchmarks/`` (the
run's own measurements), keeps each job's start-up (``job_start_seconds`` of
``replicate/data/step_times.json``) and scales the rest by how much a cut shrinks the job's
work in the planner's count (``replicate.plan``: positions x FLOPs per position at the
backbone's measured rates), with one correction: the planner counts every example at
``max_length``, so here each job's positions are counted at the mean length its examples
really encode to (the method's encoder, or MP2's MRC encoder for a pre-training's upstream
tasks, on the first 300 examples of each task's test pool), capped at the max_length in
force. The other jobs (data fetch, splits, pre-training data, tables, figures) are kept as
measured, and the set-up (``--setup-seconds``, 70 by default: ``make setup`` from a fresh
clone here) is added. The wall time is the job-seconds over ``--cores``: the run's own
jobs kept both cores busy (38 min 17 s of DAG for 4,566 job-seconds at 3708104).

The cuts, each a config overlay on the run's config: test sets of 60, 2 seeds, every
method's and pre-training's max_length 64, and their combinations.
"""

from __future__ import annotations

import argparse
import copy
import csv
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SAMPLE = 300  # examples of each test pool whose encoded length is measured


def overlays(cfg: dict) -> dict:
    test60 = {"protocol": {"test_cap": 60}}
    seeds2 = {"grid": {"seeds": cfg["grid"]["seeds"][:2]}}
    len64 = {"methods": {m: {"max_length": 64} for m in cfg["grid"]["methods"]},
             "pretraining": {p: {"max_length": 64} for p in cfg.get("pretraining", {})}}
    return {"none": [], "test sets of 60": [test60], "2 seeds": [seeds2], "max_length 64": [len64],
            "2 seeds, max_length 64": [seeds2, len64],
            "2 seeds, max_length 64, test sets of 60": [seeds2, len64, test60]}


def merged(base: dict, parts) -> dict:
    from snakemake.utils import update_config

    cfg = copy.deepcopy(base)
    for part in parts:
        update_config(cfg, copy.deepcopy(part))
    return cfg


class Lengths:
    """Mean encoded positions of a task's examples under an encoder, capped at max_length."""

    def __init__(self, cfg: dict):
        from replicate.backbones import BACKBONES

        self.cfg = cfg
        self.spec = BACKBONES.get(cfg["grid"]["backbone"])
        self.tokenizer = self.spec.load_tokenizer()
        self.raw = {}

    def _raw(self, key, task, encoder):
        if key not in self.raw:
            pools = task.load_pools(self.cfg["data_dir"])
            self.raw[key] = [len(encoder.encode(ex).input_ids) for ex in pools.test[:SAMPLE]]
        return self.raw[key]

    def of_train(self, method_name: str, task_name: str, max_length: int, mcfg) -> float:
        from replicate.methods import METHODS
        from replicate.tasks import resolve_task

        method, task = METHODS.get(method_name), resolve_task(task_name)
        view = method.task_view(task, mcfg)
        raw = self._raw(("train", method_name, task_name), view,
                        method.encoder(self.tokenizer, view, mcfg, self.spec, max_length=10 ** 6))
        return statistics.mean(min(n, max_length) for n in raw)

    def of_pretrain(self, name: str, pcfg, max_length: int) -> float:
        from replicate.formats import in_format
        from replicate.mrc import MRCEncoder
        from replicate.pretrain_config import check_upstream_tasks

        means = []
        for task in check_upstream_tasks(name, pcfg, None):
            view = in_format(task, pcfg.layout)
            encoder = MRCEncoder(self.tokenizer, view, 10 ** 6, pcfg.prompt_length, self.spec.uses_cls,
                                 self.spec.token_type)
            means.append(statistics.mean(min(n, max_length) for n in self._raw(("pre", task.name), view, encoder)))
        return statistics.mean(means)


def job_seconds(cfg: dict, lengths: Lengths, step_times: dict) -> dict:
    """The planner's seconds of positions for every training and pre-training job of table3
    under ``cfg``, each job's positions counted at its examples' mean encoded length."""
    from replicate import plan
    from replicate.config import method_overrides
    from replicate.methods import METHODS
    from replicate.pretrain_config import make_pretrain_config

    out = {}
    for key, job in plan.make_plan(cfg, ["table3"]).jobs.items():
        if job.kind == "train":
            g = key[1]
            method = METHODS.get(g.method)
            mcfg = method.job_config(method.make_config(method_overrides(cfg, g.method, g.task, g.shot)), g.shot)
            mean = lengths.of_train(g.method, g.task, job.length, mcfg)
            name = f"train/{g.backbone}/{g.task}_shot{g.shot}_{g.method}"
        elif job.kind == "pretrain":
            pcfg = make_pretrain_config(key[1], cfg["pretraining"][key[1]] or {})
            mean = lengths.of_pretrain(key[1], pcfg, job.length)
            name = f"pretrain/{key[1]}_{key[2]}"
        else:
            continue
        scale = mean / job.length
        job.fwd_train, job.bwd, job.fwd_eval = (round(n * scale) for n in (job.fwd_train, job.bwd, job.fwd_eval))
        job.length = max(1, round(mean))
        out[name] = plan.cpu_seconds(job, step_times)
    return out


def measured(results: Path) -> dict:
    """Wall seconds of every job of the run (``<results>/benchmarks/<rule>/...tsv``), by path."""
    out = {}
    for f in sorted((results / "benchmarks").rglob("*.tsv")):
        rows = list(csv.DictReader(f.open(), delimiter="\t"))
        if rows:
            out[str(f.relative_to(results / "benchmarks"))[:-4]] = float(rows[-1]["s"])
    return out


def main(argv=None) -> int:
    from replicate.config import check_config, read_config_file
    from replicate.plan import load_step_times

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default=str(REPO / "results"))
    p.add_argument("--config", default=str(REPO / "config" / "config.yaml"))
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--setup-seconds", type=float, default=70.0)
    args = p.parse_args(argv)

    base = read_config_file(args.config)
    step_times = load_step_times()
    start = step_times.get("job_start_seconds", 0.0)
    lengths = Lengths(check_config(copy.deepcopy(base), check_data=False))
    times = measured(Path(args.results))
    before = job_seconds(check_config(copy.deepcopy(base), check_data=False), lengths, step_times)
    missing = sorted(set(before) - set(times))
    if missing:
        print(f"no benchmark for {len(missing)} jobs of table3 (e.g. {missing[0]}): run make table3 first")
        return 2
    other = sum(s for name, s in times.items() if name not in before)
    print(f"run: {sum(times.values()):,.0f} job-seconds ({len(before)} training and pre-training jobs, "
          f"{other:,.0f} s of other jobs); start-up {start:.1f} s a job kept; {args.cores} cores, "
          f"{args.setup_seconds:.0f} s set-up")
    print(f"{'cut':45s} {'job-seconds':>12s} {'make table3':>12s}")
    for label, parts in overlays(base).items():
        after = job_seconds(check_config(merged(base, parts), check_data=False), lengths, step_times)
        total = other + sum(start + (times[name] - start) * after[name] / before[name] for name in before)
        wall = total / args.cores + args.setup_seconds
        print(f"{label:45s} {total:12,.0f} {wall / 60:9.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
