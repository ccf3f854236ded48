"""The same jobs on two versions of the package: wall-time ratios, and how far their cells differ.

    python bench/speed_ab.py --baseline <commit> [--groups pt:bbc-topic pt:sentence-polarity ...]
                             [--pretraining mp2-shallow --steps 100] [--rounds 1]

Extracts ``<commit>`` (``git archive``) and a copy of this working tree's package into a
temporary folder and runs each named cell
group (``method:task``, the config's shot and seeds) as a real job, ``python -m replicate
train``, once in each tree per round, alternating baseline and new so that a drift of the
machine's speed falls on both. Both trees read the same split manifests (drawn once, by the
baseline); a group that starts from a pre-training reads the baseline's checkpoint in both
trees, so that its cells differ only by what the training code does. ``--pretraining``
also runs that pre-training (``--steps`` of it, the config's dev cadence) in both trees and
compares their dev curves.

Prints, per job, the median wall seconds of each tree and the median of the per-round ratios
new / baseline, then each group's largest difference between the trees' cells: a seed's test
metric, the group's mean score (what a table shows), dev curve (every check), training loss,
and the seeds whose selected checkpoint differs. A change that alters only the shape of batches moves
numbers by round-off; a different best epoch is where round-off tipped a selection.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from replicate.config import cell_pretraining, load_config  # noqa: E402
DEFAULT_GROUPS = ["pt:bbc-topic", "pt:sentence-polarity", "mp2-shallow:hedge-detection", "bbt:sentence-polarity"]


def extract(commit: str, into: Path) -> Path:
    """The tree of ``commit`` as plain files under ``into`` (no worktree, nothing of git's changed)."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit], check=True, capture_output=True).stdout
    tar_path = into.parent / "baseline.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(into, filter="data")
    return into


def run(tree: Path, args: list, log: Path) -> float:
    """Wall seconds of ``python -m replicate <args>`` importing the package of ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    with open(log, "a") as out:
        # run in the tree itself: ``-m`` puts the working directory first on sys.path
        done = subprocess.run([sys.executable, "-m", "replicate", *args], cwd=tree, env=env, stdout=out,
                              stderr=subprocess.STDOUT)
    if done.returncode != 0:
        sys.exit(f"speed_ab: `replicate {' '.join(args)}` failed in {tree} (see {log})")
    return time.perf_counter() - start


def cells(results: Path, method: str, task: str, shot, seeds) -> dict:
    out = {}
    for seed in seeds:
        path = next(results.glob(f"cells/*/{task}/shot{shot}/{method}/seed{seed}.json"))
        out[seed] = json.loads(path.read_text())
    return out


def differences(a: dict, b: dict) -> dict:
    """Largest |a - b| over the seeds' test metrics, dev curves and training-loss curves; the
    seeds whose best (selected) epoch or call differs."""
    test, dev, loss, selected = 0.0, 0.0, 0.0, []
    for seed in a:
        ra, rb = a[seed], b[seed]
        for k, v in ra["metrics"].items():
            test = max(test, abs(v - rb["metrics"][k]))
        for (_, da), (_, db) in zip(ra["dev"]["curve"], rb["dev"]["curve"]):
            dev = max(dev, abs(da - db))
        for la, lb in zip(flat(ra.get("train_loss_curve")), flat(rb.get("train_loss_curve"))):
            loss = max(loss, abs(la - lb))
        if ra["dev"]["best_epoch"] != rb["dev"]["best_epoch"]:
            selected.append(seed)
    mean = abs(statistics.fmean(r["score"] for r in a.values()) - statistics.fmean(r["score"] for r in b.values()))
    return {"test": test, "mean": mean, "dev": dev, "loss": loss, "selected_differs": selected}


def flat(curve) -> list:
    """A loss curve's numbers in order (a black-box or staged curve nests them)."""
    if isinstance(curve, (int, float)):
        return [curve]
    return [v for item in curve or [] for v in flat(item)]


def compare(tmp: Path, groups, shot, seeds, pretraining) -> None:
    print(f"\n{'cells':<36}{'max |test|':>11}{'|mean|':>8}{'max |dev|':>10}{'max |loss|':>11}  "
          "selected checkpoint differs (seeds)")
    for method, task in groups:
        d = differences(cells(tmp / "results-baseline", method, task, shot, seeds),
                        cells(tmp / "results-new", method, task, shot, seeds))
        print(f"{method + ' on ' + task:<36}{d['test']:>11.3f}{d['mean']:>8.3f}{d['dev']:>10.3f}{d['loss']:>11.5f}  "
              f"{d['selected_differs'] or 'none'}")
    if pretraining:
        curves = [json.loads((tmp / f"pretrain-{name}" / "pretrain.json").read_text())["dev_curve"]
                  for name in ("baseline", "new")]
        dev = max(abs(a["mean"] - b["mean"]) for a, b in zip(*curves))
        print(f"{'pretrain ' + pretraining:<36}{'':>11}{dev:>10.3f}  (mean dev over its checks)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--baseline", required=True, help="the commit to compare against")
    p.add_argument("--config", default=str(REPO / "config" / "config.yaml"))
    p.add_argument("--groups", nargs="+", default=DEFAULT_GROUPS, help="method:task, the config's shot and seeds")
    p.add_argument("--pretraining", help="also run this pre-training of the config in both trees")
    p.add_argument("--steps", type=int, help="with --pretraining: this many steps")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--compare", help="only compare the cells of an earlier run's folder")
    args = p.parse_args()

    cfg = yaml.safe_load(open(args.config))
    shot, seeds = cfg["grid"]["shots"][0], [str(s) for s in cfg["grid"]["seeds"]]
    groups = [g.split(":") for g in args.groups]
    if args.compare:
        return compare(Path(args.compare), groups, shot, seeds, args.pretraining)
    tmp = Path(tempfile.mkdtemp(prefix="speed_ab-"))
    # the working tree as it is now: editing it while the bench runs changes nothing here
    new = tmp / "new"
    for part in ("replicate", "config"):
        shutil.copytree(REPO / part, new / part, ignore=shutil.ignore_patterns("__pycache__"))
    trees = {"baseline": extract(args.baseline, tmp / "baseline"), "new": new}
    configs, logs = {}, {}
    for name in trees:
        run_cfg = dict(cfg, results_dir=str(tmp / f"results-{name}"), data_dir=str(REPO / cfg["data_dir"]))
        if args.pretraining and args.steps:
            run_cfg["pretraining"] = {**cfg["pretraining"],
                                      args.pretraining: {**cfg["pretraining"][args.pretraining], "steps": args.steps}}
        configs[name] = tmp / f"{name}.yaml"
        configs[name].write_text(yaml.safe_dump(run_cfg))
        logs[name] = tmp / f"{name}.log"
    print(f"speed_ab: baseline {args.baseline} vs the working tree of {REPO} (a copy); files in {tmp}")

    # the same splits and the same pre-training checkpoints in both trees
    for task in sorted({t for _, t in groups}):
        run(trees["baseline"], ["split", "--config", str(configs["baseline"]), "--task", task, "--shot", str(shot),
                                "--seeds", *seeds], logs["baseline"])
    checked = load_config(str(configs["baseline"]))
    pretrainings = sorted({cell_pretraining(checked, m, t) for m, t in groups} - {None})
    for name in pretrainings:
        run(trees["baseline"], ["pretrain", "--config", str(configs["baseline"]), "--name", name, "--device", "cpu"],
            logs["baseline"])
    splits = tmp / "results-baseline" / "splits"
    (tmp / "results-new").mkdir(exist_ok=True)
    os.symlink(splits, tmp / "results-new" / "splits")
    if pretrainings:
        os.symlink(tmp / "results-baseline" / "pretrain", tmp / "results-new" / "pretrain")

    jobs = []
    if args.pretraining:
        jobs.append((f"pretrain {args.pretraining}",
                     lambda name: ["pretrain", "--config", str(configs[name]), "--name", args.pretraining,
                                   "--device", "cpu", "--out-dir", str(tmp / f"pretrain-{name}")]))
    for method, task in groups:
        jobs.append((f"{method} on {task}",
                     lambda name, m=method, t=task: ["train", "--config", str(configs[name]), "--method", m,
                                                     "--task", t, "--shot", str(shot), "--seeds", *seeds,
                                                     "--device", "cpu"]))
    seconds = {label: {"baseline": [], "new": []} for label, _ in jobs}
    for r in range(args.rounds):
        for label, job_args in jobs:
            for name in ("baseline", "new"):
                if r > 0 and not label.startswith("pretrain"):
                    for path in (tmp / f"results-{name}" / "cells").glob(f"*/*/shot{shot}/*/seed*"):
                        path.unlink()  # a rerun would be refused over a finished cell
                seconds[label][name].append(run(trees[name], job_args(name), logs[name]))
            base, new = seconds[label]["baseline"][-1], seconds[label]["new"][-1]
            print(f"round {r + 1}: {label}: {base:.1f} s -> {new:.1f} s", flush=True)

    print(f"\n{'job':<36}{'baseline s':>11}{'new s':>8}{'new/base':>10}")
    for label, _ in jobs:
        base, new = seconds[label]["baseline"], seconds[label]["new"]
        ratio = statistics.median(n / b for n, b in zip(new, base))
        print(f"{label:<36}{statistics.median(base):>11.1f}{statistics.median(new):>8.1f}{ratio:>10.3f}")
    total_b = sum(statistics.median(s["baseline"]) for s in seconds.values())
    total_n = sum(statistics.median(s["new"]) for s in seconds.values())
    print(f"{'all of them':<36}{total_b:>11.1f}{total_n:>8.1f}{total_n / total_b:>10.3f}")

    compare(tmp, groups, shot, seeds, args.pretraining)


if __name__ == "__main__":
    main()
