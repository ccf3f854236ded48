"""Benchmark: black-box fitness evaluations per second, a population as one batch vs one
member at a time.

Both arms run in this one process on the same backbone, task, training examples and
candidate prompts (a CMA-ES population of ``--popsize`` for each of ``--seeds`` seeds, BBT's
random projection), so the ratio is measured in one run:

  batched:    every (seed, member) row's training examples share forward passes
              (``blackbox.PopulationEvaluator.losses`` over all rows at once)
  sequential: one row at a time, each its own call (BBT's default, one API call per member)

One evaluation = one model forward call as the papers count it (a candidate over its seed's
whole few-shot training set). The arms alternate over ``--repeats`` rounds so drift in load
affects both; both arms' losses are checked to agree.

    python bench/population_batching.py --task sentence-polarity --seeds 3 --popsize 20
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch

from replicate.backbones import BACKBONES
from replicate.blackbox import BlackBoxTuner
from replicate.methods import METHODS
from replicate.splits import Protocol, draw_split, resolve
from replicate.tasks import TASKS
from replicate.train import SeedData


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", default="minilm-l6")
    ap.add_argument("--task", default="sentence-polarity")
    ap.add_argument("--data-dir", default="data/corpora")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--popsize", type=int, default=20)
    ap.add_argument("--prompt-length", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=64, help="examples per forward pass (eval_batch_size)")
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default="bench/out/population_batching.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    spec = BACKBONES.get(args.backbone)
    method = METHODS.get("bbt")
    cfg = method.make_config({"prompt_length": args.prompt_length, "precision": args.precision,
                              "eval_batch_size": args.batch_size, "pretraining": None, "budget": 1})
    backbone, tok = spec.load()
    task = TASKS.get(args.task)
    pools = task.load_pools(args.data_dir)
    enc = method.encoder(tok, task, cfg, spec)
    seeds = [8, 13, 21, 42, 100][:args.seeds]
    data = []
    for s in seeds:
        parts = resolve(draw_split(task, pools, 32, s, Protocol(test_cap=16)), pools)
        data.append(SeedData(s, *(list(map(enc.encode, parts[k])) for k in ("train", "dev", "test"))))
    model = method.build(backbone, spec, tok, cfg, seeds)
    tuner = BlackBoxTuner(model, method, cfg, task, enc, data, tok.pad_token_id, log=lambda m: None)
    tuner.spaces.update(method.spaces(tuner))
    g = torch.Generator().manual_seed(0)
    rows = [(i, torch.randn(1, cfg.intrinsic_dim, generator=g)) for i in range(len(seeds)) for _ in range(args.popsize)]
    prompts = torch.cat([tuner.spaces[s].prompts(x.unsqueeze(0)) for s, x in rows])
    row_seed = [s for s, _ in rows]
    ev = tuner.evaluator

    ev.losses(prompts[:2], row_seed[:2])  # warm-up
    times = {"batched": [], "sequential": []}
    for _ in range(args.repeats):
        start = time.perf_counter()
        together = ev.losses(prompts, row_seed)
        times["batched"].append(time.perf_counter() - start)
        start = time.perf_counter()
        alone = [ev.losses(prompts[i:i + 1], [s])[0] for i, s in enumerate(row_seed)]
        times["sequential"].append(time.perf_counter() - start)
    worst = max(abs(a - b) / max(abs(b), 1e-9) for a, b in zip(together, alone))
    n = len(rows)
    result = {
        "backbone": spec.name, "task": task.name, "seeds": len(seeds), "popsize": args.popsize,
        "train_examples_per_call": len(data[0].train), "batch_size": args.batch_size, "precision": args.precision,
        "threads": args.threads, "device": "cpu", "repeats": args.repeats,
        "evals_per_s": {arm: round(n / statistics.median(ts), 2) for arm, ts in times.items()},
        "ratio_batched_over_sequential": round(statistics.median(times["sequential"])
                                               / statistics.median(times["batched"]), 3),
        "max_relative_loss_difference": worst,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    json.dump(result, sys.stdout, indent=1)
    print()
    for hook in model._hooks:
        hook.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
