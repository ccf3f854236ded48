"""Where one training job's wall time goes, and how much of its batches is padding.

    python bench/job_time_split.py [--config config/config.yaml] [--method pt] [--task bbc-topic]
    python bench/job_time_split.py --pretraining mp2-shallow [--steps 100]

Runs one real cell group (``train``, all the config's seeds, the config's thread count) in
this process with timers around the job's phases, and measures the start-up a job pays
before it (a fresh interpreter importing what ``python -m replicate train`` imports) in a
subprocess. Prints each phase's seconds and its share of the whole, and the share of padded
positions in training and in evaluation batches (tokens a forward pass computes for
nothing). The phases:

    start-up      a fresh interpreter and the package's imports (median of 3 subprocesses)
    model load    the backbone and tokenizer (``BackboneSpec.load``)
    encoding      the seeds' train/dev/test examples into tensors (``jobs.encode_parts``)
    other setup   config, split manifests, data pools, initial vocabulary, pristine state
    training      the group's training loop less its evaluations
    dev / test    evaluation on dev (every check) and on test (``GroupTrainer._evaluate``)
    writing       result files (``results.write_result``)

With ``--pretraining`` it runs that pre-training of the config instead (``pretrain``, its data
built in the job; ``--steps`` shortens it, keeping its dev-check cadence), and the phases are
start-up, model load, data (``pretrain.build_data``), other setup, training (the loop less its
dev checks and resume saves; it encodes each example when it first meets it), dev (``train.predict_rows`` in the loop) and writing
(checkpoint, summary, resume saves).

It also prints the useful-FLOP rate of the training and evaluation phases as a share of this
machine's bf16 matmul peak (``torch.matmul`` of 2048 x 2048 matrices at the job's thread count,
best of 5). Useful FLOPs count the backbone's transformer-layer weights N (embeddings and heads
left out) against every position of a batch's attention mask (prompt slots included): 2N per
position forward, 2N more backward for the activations' gradients, and 2N more for the weights'
gradients where the backbone trains (model tuning): 4N or 6N per training position, 2N per
evaluation position. Attention's own products are left out (at 128 positions and d = 384 they
add about 5%), so the share is a lower bound.

Nothing is changed in the package: the timers wrap its functions for this run only.
A black-box group (BBT, BBTv2, black-box MP2) splits its training into the forward calls on
the training sets (``PopulationEvaluator.losses``: "training", 2N a position) and the search
around them (CMA-ES, Bayesian optimisation, building prompts: "search").
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

IMPORTS = "import replicate.cli, replicate.jobs, replicate.train, replicate.backbones, torch, transformers"


def startup_seconds(rounds: int = 3, code: str = IMPORTS) -> float:
    """Median wall time of a fresh interpreter that runs ``code`` (by default: imports what a
    train job imports); its output is discarded."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class Timers:
    def __init__(self):
        self.seconds = defaultdict(float)
        self.padding = defaultdict(lambda: [0, 0])  # phase -> [padded positions, all positions]
        self.models = []  # what BackboneSpec.load returned
        self.phase = "setup"

    def wrap(self, owner, name, phase=None, phase_of=None):
        """Time every call of ``owner.name`` under ``phase`` (or ``phase_of(*args)``)."""
        original = getattr(owner, name)
        timers = self

        def timed(*args, **kwargs):
            label = phase or phase_of(*args, **kwargs)
            previous, timers.phase = timers.phase, label
            start = time.perf_counter()
            try:
                out = original(*args, **kwargs)
                if label == "model load":
                    timers.models.append(out[0])
                return out
            finally:
                timers.seconds[label] += time.perf_counter() - start
                timers.phase = previous

        setattr(owner, name, timed)

    def count_padding(self, owner, name="collate"):
        original = getattr(owner, name)
        timers = self

        def counted(*args, **kwargs):
            batch = original(*args, **kwargs)
            mask = batch.attention_mask
            kind = "evaluation" if timers.phase in ("dev", "test") else "training"
            timers.padding[kind][0] += int(mask.numel() - mask.sum())
            timers.padding[kind][1] += int(mask.numel())
            return batch

        setattr(owner, name, counted)


@contextmanager
def chdir(path):
    import os

    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def matmul_peak(threads: int, n: int = 2048, rounds: int = 5) -> float:
    """FLOP/s of the best of ``rounds`` bf16 n x n matmuls at ``threads`` threads."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(n, n, dtype=torch.bfloat16), torch.randn(n, n, dtype=torch.bfloat16)
    torch.matmul(a, b)  # warm-up
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best


def layer_weights(model) -> int:
    """Parameters of the backbone's transformer layers (what every position multiplies)."""
    return sum(p.numel() for name, p in model.named_parameters()
               if p.dim() == 2 and "embed" not in name and "shared" not in name and "head" not in name
               and "pooler" not in name)


def wrap_collates(timers: Timers) -> None:
    from replicate import formulation, seq2seq

    for module in (formulation, seq2seq):
        for obj in vars(module).values():
            if isinstance(obj, type) and "collate" in vars(obj):
                timers.count_padding(obj)


def time_cell_group(cli, cfg: dict, config: Path, method: str, task: str, timers: Timers):
    """(in-process job seconds, phase rows, title) of one ``train`` job of the config's seeds."""
    from replicate import blackbox, jobs, train
    from replicate.backbones import BackboneSpec

    shot, seeds = cfg["grid"]["shots"][0], [str(s) for s in cfg["grid"]["seeds"]]
    common = ["--config", str(config), "--task", task, "--shot", str(shot), "--seeds", *seeds]
    if cli(["split", *common]) != 0:
        sys.exit("job_time_split: the split job failed (its line above says why)")
    timers.wrap(BackboneSpec, "load", "model load")
    timers.wrap(jobs, "encode_parts", "encoding")
    timers.wrap(train.GroupTrainer, "_evaluate", phase_of=lambda self, split, seeds: split)
    # a black-box group: its forward calls on the training sets, and its dev and test passes
    timers.wrap(blackbox.PopulationEvaluator, "losses", "calls")
    timers.wrap(blackbox.PopulationEvaluator, "predict", phase_of=lambda self, prompts, rows, split: split)
    timers.wrap(jobs, "write_result", "writing")
    timers.wrap(train, "run_group", "group")
    wrap_collates(timers)
    start = time.perf_counter()
    if cli(["train", "--method", method, *common]) != 0:
        sys.exit("job_time_split: the train job failed (its line above says why)")
    job = time.perf_counter() - start
    s = timers.seconds
    # run_group holds the training loop, the evaluations and the writing of each seed's result
    rows = {"model load": s["model load"], "encoding": s["encoding"],
            "other setup": job - s["group"] - s["model load"] - s["encoding"],
            "training": s["group"] - s["dev"] - s["test"] - s["writing"],
            "dev": s["dev"], "test": s["test"], "writing": s["writing"]}
    if "calls" in s:  # black-box: training is its forward calls and the search around them
        rows["training"] = s["calls"]
        rows = {**rows, "search": s["group"] - s["calls"] - s["dev"] - s["test"] - s["writing"]}
    return job, rows, f"{method} on {task}, shot {shot}, seeds {' '.join(seeds)}"


def time_pretraining(cli, cfg: dict, config: Path, name: str, timers: Timers):
    """(in-process job seconds, phase rows, title) of one ``pretrain`` job (data built in it)."""
    from replicate import jobs, pretrain, train
    from replicate.backbones import BackboneSpec

    timers.wrap(BackboneSpec, "load", "model load")
    timers.wrap(pretrain, "build_data", "data")
    timers.wrap(pretrain, "run_pretraining", "loop")
    timers.wrap(train, "predict_rows", "dev")  # the loop's dev checks
    timers.wrap(pretrain, "save_torch_atomic", "resume saves")
    for writer in ("save_torch_atomic", "write_json_atomic"):
        timers.wrap(jobs, writer, "writing")
    wrap_collates(timers)
    start = time.perf_counter()
    if cli(["pretrain", "--config", str(config), "--name", name, "--device", "cpu"]) != 0:
        sys.exit("job_time_split: the pretrain job failed (its line above says why)")
    job = time.perf_counter() - start
    s = timers.seconds
    rows = {"model load": s["model load"], "data": s["data"],
            "other setup": job - s["loop"] - s["model load"] - s["data"] - s["writing"],
            "training": s["loop"] - s["dev"] - s["resume saves"], "dev": s["dev"],
            "writing": s["writing"] + s["resume saves"]}
    pcfg = cfg["pretraining"][name]
    return job, rows, f"pre-training {name}, {pcfg['steps']} steps of {pcfg['batch_size']}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default=str(REPO / "config" / "config.yaml"))
    p.add_argument("--method", default="pt")
    p.add_argument("--task", default=None, help="default: the config's first task")
    p.add_argument("--pretraining", default=None, help="time this pre-training of the config instead")
    p.add_argument("--steps", type=int, default=None, help="with --pretraining: run this many steps")
    args = p.parse_args()

    startup = startup_seconds()

    from replicate.cli import main as cli

    cfg = yaml.safe_load(open(args.config))
    timers = Timers()
    with tempfile.TemporaryDirectory() as tmp:
        cfg["results_dir"] = str(Path(tmp) / "results")
        if args.pretraining and args.steps:
            cfg["pretraining"][args.pretraining]["steps"] = args.steps
        config = Path(tmp) / "run.yaml"
        config.write_text(yaml.safe_dump(cfg))
        with chdir(REPO):
            if args.pretraining:
                job, phases, title = time_pretraining(cli, cfg, config, args.pretraining, timers)
            else:
                job, phases, title = time_cell_group(cli, cfg, config, args.method,
                                                     args.task or cfg["grid"]["tasks"][0], timers)
    rows = {"start-up": startup, **phases}
    total = sum(rows.values())
    print(f"{title} ({args.config}); job {job:.1f}s in-process + start-up {startup:.1f}s = {total:.1f}s")
    print(f"{'phase':<26}{'seconds':>9}{'share':>8}")
    for name, value in rows.items():
        print(f"{name:<26}{value:>9.2f}{value / total:>8.1%}")
    for kind, (padded, positions) in timers.padding.items():
        print(f"padding in {kind} batches: {padded / positions:.1%} of {positions} positions")
    peak = matmul_peak(cfg.get("threads_per_job", 1))
    weights = layer_weights(timers.models[0])
    # forward and backward through a frozen backbone: 4N; model tuning's weight gradients: 6N;
    # a black-box group's calls are forward passes: 2N
    per_position = (2 if "calls" in timers.seconds
                    else 6 if not args.pretraining and args.method == "model-tuning" else 4)
    real = {kind: positions - padded for kind, (padded, positions) in timers.padding.items()}
    for kind, flops, seconds in (
            ("training", per_position * weights * real.get("training", 0), rows["training"]),
            ("evaluation", 2 * weights * real.get("evaluation", 0), rows["dev"] + rows.get("test", 0.0))):
        print(f"useful FLOP rate in {kind}: {flops / seconds / 1e9:.2f} GFLOP/s = {flops / seconds / peak:.1%} of the "
              f"bf16 matmul peak ({peak / 1e9:.1f} GFLOP/s; N = {weights / 1e6:.1f}M layer weights)")


if __name__ == "__main__":
    main()
