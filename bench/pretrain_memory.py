"""Benchmark: peak memory of a long pre-training, bounded encoding cache vs the old unbounded one.

Both arms run from this one command, at once, on the same backbone (the tiny random BERT of
the tests), tasks, examples and steps, each in a fresh child process so that each peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) is its own:

  bounded:   ``run_pretraining(..., cache_limit=N)``, the loop as it is (``EncodingCache``)
  unbounded: ``cache_limit=None``, every encoding made is kept: the loop before the bound

The examples are synthetic (random vocabulary words, long enough to fill ``max_length``) and
there are as many as the steps draw (steps x batch size), so nearly every draw is an example
not seen before, as in MP2's pre-training (1M steps of 32 over ~10M upstream examples: each
seen about three times). Reported: each arm's peak RSS, its RSS when the loop starts
(backbone, data and model built), the growth during the loop, the ratios unbounded / bounded,
and that both arms' loss and dev curves are equal. Also the bytes one encoding holds at 512
tokens (``tracemalloc``) and what the two caches would hold at MPMP's scale from it.

    python bench/pretrain_memory.py                       # ~1.5 minutes on 2 cores
    python bench/pretrain_memory.py --steps 3000 --cache-limit 2048
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

TASKS = ["bbc-topic", "sentence-polarity", "hedge-detection"]
MPMP_TRAIN_EXAMPLES = 9_600_000  # ~1.07M dev examples at 10% (issue 19): ~9.6M train over 38 tasks


def rss_kb() -> int:
    """The current resident set size in KiB (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def words_of(tokenizer):
    return sorted(w for w in tokenizer.get_vocab() if w.isalpha() and w.isascii() and len(w) > 2)


def synthetic_data(tokenizer, tasks, per_task: int, n_words: int, seed: int = 0):
    """{task: (train, dev)}: random texts of ``n_words`` vocabulary words, labels 0/1."""
    from replicate.tasks.base import Example

    words, rng = words_of(tokenizer), random.Random(seed)
    data = {}
    for task in tasks:
        def example(i, part):
            return Example(id=f"{part}{i:07d}", text=" ".join(rng.choices(words, k=n_words)), label=i % 2)
        data[task.name] = ([example(i, "train") for i in range(per_task)], [example(i, "dev") for i in range(16)])
    return data


def run_arm(args) -> dict:
    """One arm in this process: the pre-training; its peak RSS."""
    import torch

    from replicate.backbones import BACKBONES
    from replicate.pretrain import check_upstream_tasks, make_pretrain_config, run_pretraining

    torch.set_num_threads(args.threads)
    spec = BACKBONES.get("tiny-bert")
    backbone, tokenizer = spec.load()
    cfg = make_pretrain_config("bench", {
        "prompt": "shallow", "tasks": TASKS, "prompt_length": 4, "n_prompts": 4, "intrinsic_dim": 16,
        "steps": args.steps, "batch_size": args.batch_size, "router_lr": 1e-2, "prompt_lr": 1e-3,
        "eval_every": args.steps // 2, "save_every": args.steps, "max_length": args.max_length, "train_mode": False})
    tasks = check_upstream_tasks("bench", cfg)
    per_task = -(-args.steps * args.batch_size // len(tasks))
    data = synthetic_data(tokenizer, tasks, per_task, args.max_length)
    start_rss = rss_kb()
    start = time.perf_counter()
    out = run_pretraining(cfg, spec, backbone, tokenizer, tasks, data, None, "bench", log=lambda *a: None,
                          cache_limit=None if args.arm == "unbounded" else args.cache_limit)
    return {"arm": args.arm, "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "rss_at_loop_start_kb": start_rss, "loop_s": round(time.perf_counter() - start, 1),
            "encoding_cache": out["encoding_cache"], "train_examples": per_task * len(tasks),
            "loss_curve": out["loss_curve"], "dev_curve": out["dev_curve"]}


def bytes_per_encoding(max_length: int, n: int = 200) -> float:
    """Python heap bytes one ``MRCEncoder`` encoding of a ``max_length``-token example holds."""
    import tracemalloc

    from replicate.backbones import BACKBONES
    from replicate.mrc import MRCEncoder
    from replicate.pretrain import check_upstream_tasks, make_pretrain_config

    spec = BACKBONES.get("tiny-bert")
    tokenizer = spec.load()[1]
    task = check_upstream_tasks("bench", make_pretrain_config("bench", {"tasks": TASKS[:1]}))[0]
    examples = synthetic_data(tokenizer, [task], n, max_length)[task.name][0]
    encoder = MRCEncoder(tokenizer, task, max_length, 50, spec.uses_cls, spec.token_type)
    encoder.encode(examples[0])  # warm-up: lazily built state is not an encoding's
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = [encoder.encode(ex) for ex in examples]
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert all(len(e.input_ids) == max_length for e in kept), "examples shorter than max_length"
    return held / n


def main(argv=None) -> int:
    from replicate.pretrain import ENCODING_CACHE

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--cache-limit", type=int, default=512,
                    help="the bounded arm's limit (the loop's default: %d)" % ENCODING_CACHE)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--arm", choices=["bounded", "unbounded"], help=argparse.SUPPRESS)  # a child's
    ap.add_argument("--out", default=os.path.join(HERE, "out", "pretrain_memory.json"))
    args = ap.parse_args(argv)
    if args.arm:
        print(json.dumps(run_arm(args)))
        return 0

    # the two arms run at once (the memory of one process is not the other's; wall time is
    # not what is measured)
    children = {}
    for arm in ("bounded", "unbounded"):
        cmd = [sys.executable, os.path.abspath(__file__), "--arm", arm, "--steps", str(args.steps),
               "--batch-size", str(args.batch_size), "--max-length", str(args.max_length),
               "--cache-limit", str(args.cache_limit), "--threads", str(args.threads)]
        children[arm] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    arms = {}
    for arm, child in children.items():
        stdout, stderr = child.communicate()
        if child.returncode:
            raise SystemExit(f"{arm} arm failed:\n{stderr}")
        arms[arm] = json.loads(stdout.strip().splitlines()[-1])
    b, u = arms["bounded"], arms["unbounded"]
    same = b["loss_curve"] == u["loss_curve"] and b["dev_curve"] == u["dev_curve"]
    growth = {a: arms[a]["peak_rss_kb"] - arms[a]["rss_at_loop_start_kb"] for a in arms}
    per_512 = bytes_per_encoding(512)
    report = {
        "what": "peak RSS of one pre-training per child process, bounded vs unbounded encoding cache",
        "backbone": "tiny-bert", "tasks": TASKS, "steps": args.steps, "batch_size": args.batch_size,
        "max_length": args.max_length, "cache_limit": args.cache_limit, "threads": args.threads,
        "train_examples": b["train_examples"],
        "peak_rss_mb": {a: round(arms[a]["peak_rss_kb"] / 1024, 1) for a in arms},
        "rss_at_loop_start_mb": {a: round(arms[a]["rss_at_loop_start_kb"] / 1024, 1) for a in arms},
        "loop_growth_mb": {a: round(growth[a] / 1024, 1) for a in arms},
        "peak_ratio_unbounded_over_bounded": round(u["peak_rss_kb"] / b["peak_rss_kb"], 2),
        "growth_ratio_unbounded_over_bounded": round(growth["unbounded"] / max(growth["bounded"], 1), 2),
        "loop_s": {a: arms[a]["loop_s"] for a in arms},
        "encoding_cache": {a: arms[a]["encoding_cache"] for a in arms},
        "same_curves": same,
        "bytes_per_encoding_at_512_tokens": round(per_512),
        "at_mpmp_scale_gb": {"unbounded (~9.6M examples)": round(per_512 * MPMP_TRAIN_EXAMPLES / 1e9, 1),
                             f"bounded ({ENCODING_CACHE})": round(per_512 * ENCODING_CACHE / 1e9, 2)},
        "python": sys.version.split()[0], "cpu_count": os.cpu_count(),
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    print(f"tiny-bert, {args.steps} steps of {args.batch_size} at {args.max_length} tokens, "
          f"{b['train_examples']} training examples, cache limit {args.cache_limit}:")
    for a in ("bounded", "unbounded"):
        print(f"  {a:9s} peak RSS {report['peak_rss_mb'][a]:7.1f} MB   growth in the loop "
              f"{report['loop_growth_mb'][a]:6.1f} MB   cache peak {arms[a]['encoding_cache']['peak']:6d}   "
              f"{arms[a]['loop_s']} s")
    print(f"  peak ratio unbounded/bounded = {report['peak_ratio_unbounded_over_bounded']}, growth ratio = "
          f"{report['growth_ratio_unbounded_over_bounded']}, same curves: {same}")
    print(f"  one encoding at 512 tokens holds {per_512 / 1024:.1f} KiB: at MPMP's scale "
          f"{report['at_mpmp_scale_gb']}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
