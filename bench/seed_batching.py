"""Benchmark: training-step time of one cell group, seeds batched vs sequential.

Both arms run in this one process on the same backbone, task, examples and step count, so
the ratio is measured in one run (no number is compared across machines or runs):

  batched:    one model holding S seeds' prompts; each step = S x batch_size examples
  sequential: S models of one seed each, one after another; each step = batch_size examples

Reported: seconds per optimizer step of the whole group (all S seeds advance one step),
the ratio sequential / batched (> 1 means batching is faster), and the arms alternate over
`--repeats` rounds so drift in machine load affects both.

    python bench/seed_batching.py --method pt --task bbc-topic --seeds 3 --steps 8
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
from replicate.methods import METHODS
from replicate.mrc import MRCEncoder
from replicate.splits import Protocol, draw_split, resolve
from replicate.tasks import TASKS
from replicate.mrc import collate, example_losses
from replicate.train import seed_axis_parameters


def group_step_time(method, cfg, spec, backbone, tok, task, examples, seeds, steps, batched: bool) -> float:
    """Mean seconds for all seeds to take one optimizer step (after one warm-up step)."""
    models = [method.build(backbone, spec, tok, cfg, seeds)] if batched else \
        [method.build(backbone, spec, tok, cfg, [s]) for s in seeds]
    opts = [torch.optim.AdamW(method.param_groups(m, cfg)) for m in models]
    per_model = len(seeds) if batched else 1
    items = examples[: cfg.batch_size * per_model]
    batch = collate(items, [i // cfg.batch_size for i in range(len(items))], tok.pad_token_id)

    def one_round():
        for model, opt in zip(models, opts):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
                logits = model(batch.input_ids, batch.attention_mask, batch.token_type_ids, batch.seed_index)
            loss = example_losses(logits.float(), batch, False).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    one_round()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        one_round()
    for m in models:
        for h in m._hooks:
            h.remove()
        assert all(p.grad is None or p.grad.shape[0] == per_model for p in seed_axis_parameters(m))
    return (time.perf_counter() - start) / steps


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="pt", choices=["pt", "ptv2"])
    ap.add_argument("--backbone", default="minilm-l6")
    ap.add_argument("--task", default="bbc-topic")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--data-dir", default="data/corpora")
    ap.add_argument("--out", default="bench/out/seed_batching.json")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    spec, task, method = BACKBONES.get(args.backbone), TASKS.get(args.task), METHODS.get(args.method)
    cfg = method.make_config({"batch_size": args.batch_size, "max_length": args.max_length,
                              "precision": args.precision, "init": "uniform"})
    backbone, tok = spec.load()
    pools = task.load_pools(args.data_dir)
    split = resolve(draw_split(task, pools, 32, 8, Protocol(test_cap=1)), pools)
    enc = MRCEncoder(tok, task, cfg.max_length, cfg.prompt_length, spec.uses_cls, spec.token_type)
    examples = [enc.encode(ex) for ex in (split["train"] * args.seeds)]
    seeds = [8, 13, 21, 42, 100, 1, 2, 3][: args.seeds]

    timings = {"batched": [], "sequential": []}
    for _ in range(args.repeats):
        for arm in ("batched", "sequential"):
            timings[arm].append(group_step_time(method, cfg, spec, backbone, tok, task, examples, seeds,
                                                args.steps, batched=arm == "batched"))
    batched, sequential = (statistics.median(timings[a]) for a in ("batched", "sequential"))
    report = {
        "what": "seconds per group step (all seeds advance one optimizer step), median over repeats",
        "method": args.method, "backbone": args.backbone, "task": args.task, "seeds": args.seeds,
        "batch_size_per_seed": args.batch_size, "max_length": args.max_length, "precision": args.precision,
        "threads": args.threads, "steps": args.steps, "repeats": args.repeats,
        "batched_s_per_step": round(batched, 4), "sequential_s_per_step": round(sequential, 4),
        "speedup_sequential_over_batched": round(sequential / batched, 3), "raw": timings,
        "torch": torch.__version__, "cpu_count": os.cpu_count(),
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    print(f"{args.method} on {args.backbone}/{args.task}, {args.seeds} seeds x batch {args.batch_size}, "
          f"{args.precision}, {args.threads} threads:")
    print(f"  batched    {batched:.3f} s/step   sequential {sequential:.3f} s/step   "
          f"ratio sequential/batched = {sequential / batched:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
