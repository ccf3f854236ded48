"""Eager vs sdpa attention on this CPU: a training step and an evaluation forward of the
embedded backbone, alternating (why ``backbones.attention_for`` picks eager on a CPU).

    python bench/attention.py [--rounds 2]

MiniLM-L6 frozen, 24 x 128 positions (3 seeds x batch 8 of a PT job, 8 of them padding in
a third of the rows), 1 thread: the training step is bf16-autocast forward and backward to
the input embeddings (what a prompt's gradient needs); evaluation is a forward under
inference mode in bf16 and in fp32. Prints seconds per call, the median of 3 after a warm-up.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from replicate.backbones import BACKBONES  # noqa: E402


def seconds(call, repeats: int = 3) -> float:
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    ids = torch.randint(1000, 20000, (24, 128))
    mask = torch.ones(24, 128, dtype=torch.long)
    mask[:8, 90:] = 0
    for r in range(args.rounds):
        for impl in ("sdpa", "eager"):
            model = BACKBONES.get("minilm-l6").load(attention=impl)[0].eval().requires_grad_(False)
            embeds = model.embeddings.word_embeddings(ids).detach().requires_grad_(True)

            def train_step():
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    out = model(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
                out.float().sum().backward()

            def forward(bf16: bool):
                with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    model(input_ids=ids, attention_mask=mask)

            print(f"round {r + 1} {impl:>5}: training step {seconds(train_step):.3f} s, evaluation "
                  f"{seconds(lambda: forward(True)):.3f} s (bf16) {seconds(lambda: forward(False)):.3f} s (fp32)")


if __name__ == "__main__":
    main()
