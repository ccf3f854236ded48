"""Step times of each backbone shape on this machine, for the planner (``python -m replicate plan``).

    python bench/step_times.py [--out replicate/data/step_times.json]

For each backbone shape the configs use (``SHAPES``), builds a random-weight model of that
shape from its ``BackboneSpec`` (d_model, n_heads; ``BertConfig`` for bert and cpt, the T5
encoder for t5; eager attention), with at most ``--layers`` of its layers (time per layer is
the same at a shape, and the planner scales by the spec's layer count), and times at a few
(batch, positions) sizes, best of ``--rounds``, on one thread:

    train  one training step as a prompt method takes it: frozen backbone, bf16 autocast, the
           gradient to the input embeddings (a sum of the last hidden state as the loss)
    eval   one evaluation forward (bf16 autocast, no gradient)

and this machine's bf16 matmul peak (``job_time_split.matmul_peak``: 2048 x 2048, best of 5,
the same thread count), and a job's start-up (``job_start_seconds``: a fresh interpreter's
imports of a training job and the embedded backbone's load, median of 3), which the planner
adds to every training and pre-training job's CPU time. It writes the measurements with the
machine, torch version, date, git commit and thread count to a JSON file the planner reads;
each size's seconds per position, and each shape's achieved FLOP rate under
``replicate.plan.flops_per_position``'s count (layer weights 12 d^2, attention 4 L d per
position and layer; training twice the forward), which is how the planner gets from these
small sizes to a job's max_length.

Sizes are small so that the whole run takes well under a minute here (2 shared cores);
t5-xxl and cpm-2 are not built (an 11B shape): the planner gives them the FLOP rate of the
largest measured shape of their architecture.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from job_time_split import IMPORTS, matmul_peak, startup_seconds  # noqa: E402  (bench modules import each other by path)

# What every training job does before its first step, in a fresh interpreter: the imports, then
# the embedded backbone's load (transformers imports its model classes lazily, on the first load).
JOB_START = IMPORTS + "; from replicate.backbones import BACKBONES; BACKBONES.get('minilm-l6').load(attention='eager')"

# backbone -> (batch, positions) sizes; the larger shapes at one small size (a per-position FLOP fit)
SHAPES = {
    "minilm-l6": [(4, 64), (2, 128)],
    "t5-small": [(2, 64)],
    "t5-base": [(2, 64)],
    "cpt-large": [(2, 64)],
    "t5-large": [(2, 64)],
}


def build(spec, layers: int):
    """A random-weight model of ``spec``'s shape with ``layers`` layers (eager attention)."""
    import torch
    from transformers import BertConfig, BertModel, T5Config, T5EncoderModel

    torch.manual_seed(0)
    if spec.arch in ("bert", "cpt"):
        config = BertConfig(vocab_size=128, hidden_size=spec.d_model, num_hidden_layers=layers,
                            num_attention_heads=spec.n_heads, intermediate_size=4 * spec.d_model,
                            attn_implementation="eager")
        model = BertModel(config, add_pooling_layer=False)
    else:
        config = T5Config(vocab_size=128, d_model=spec.d_model, d_kv=spec.d_model // spec.n_heads,
                          d_ff=4 * spec.d_model, num_layers=layers, num_heads=spec.n_heads,
                          attn_implementation="eager")
        model = T5EncoderModel(config)
    model.requires_grad_(False)
    return model.eval()


def best_of(fn, rounds: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def time_sizes(model, d_model: int, sizes, rounds: int):
    import torch

    out = []
    for batch, positions in sizes:
        x = torch.randn(batch, positions, d_model)
        mask = torch.ones(batch, positions, dtype=torch.long)

        def train():
            emb = x.clone().requires_grad_(True)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                hidden = model(inputs_embeds=emb, attention_mask=mask).last_hidden_state
            hidden.float().sum().backward()

        def evaluate():
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
                model(inputs_embeds=x, attention_mask=mask)

        out.append({"batch": batch, "positions": positions,
                    "train_s": best_of(train, rounds), "eval_s": best_of(evaluate, rounds)})
    return out


def git_commit() -> str:
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def main(argv=None) -> int:
    import torch
    import transformers

    from replicate.backbones import BACKBONES
    from replicate.plan import flops_per_position

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(REPO / "replicate" / "data" / "step_times.json"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--layers", type=int, default=2, help="layers built per shape (time scales by layer count)")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    peak = matmul_peak(args.threads)
    job_start = startup_seconds(code=JOB_START)  # the fixed cost each job pays (the planner adds it per job)
    shapes = {}
    for name, sizes in SHAPES.items():
        spec = BACKBONES.get(name)
        layers = min(args.layers, spec.n_layers)
        measured = time_sizes(build(spec, layers), spec.d_model, sizes, args.rounds)
        scale = spec.n_layers / layers  # whole-backbone seconds from the built layers'
        rates = {}
        for mode in ("train", "eval"):
            flops = sum(m["batch"] * m["positions"] * flops_per_position(spec, m["positions"], mode) / scale
                        for m in measured)
            rates[mode] = flops / sum(m[f"{mode}_s"] for m in measured)
        for m in measured:
            for mode in ("train", "eval"):
                m[f"{mode}_s_per_position"] = m[f"{mode}_s"] * scale / (m["batch"] * m["positions"])
        shapes[name] = {"arch": spec.arch, "d_model": spec.d_model, "n_layers": spec.n_layers,
                        "n_heads": spec.n_heads, "layers_built": layers, "sizes": measured,
                        "train_flop_rate": rates["train"], "eval_flop_rate": rates["eval"]}
        print(f"{name:10s} train {rates['train'] / 1e9:6.1f} GFLOP/s, eval {rates['eval'] / 1e9:6.1f} GFLOP/s "
              f"({rates['train'] / peak:.0%} / {rates['eval'] / peak:.0%} of peak); " + ", ".join(
                  f"b{m['batch']} L{m['positions']}: {m['train_s_per_position'] * 1e3:.3f} / "
                  f"{m['eval_s_per_position'] * 1e3:.3f} ms per position" for m in measured))
    record = {
        "what": "bench/step_times.py: seconds per position of a training step (frozen backbone, gradient to the "
                "input embeddings, bf16 autocast, eager attention) and an evaluation forward, per backbone shape",
        "machine": f"{platform.processor() or platform.machine()} ({_cpu_name()})",
        "torch": torch.__version__, "transformers": transformers.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "git_commit": git_commit(), "threads": args.threads, "bf16_matmul_peak_flops": peak,
        "job_start_seconds": job_start,
        "shapes": shapes,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"peak {peak / 1e9:.1f} GFLOP/s bf16 at {args.threads} thread(s); a job's start-up {job_start:.1f} s; "
          f"wrote {args.out} in {time.perf_counter() - started:.1f} s")
    return 0


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
