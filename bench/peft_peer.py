"""A PT training step against peft's prompt tuning on the same batch: is ours as fast as the peer?

    pip install --no-deps --target /tmp/peftlib peft accelerate   # peft is not a dependency
    PYTHONPATH=/tmp/peftlib python bench/peft_peer.py [--task bbc-topic] [--rounds 5]

Both arms train a 20-token prompt in front of the same frozen MiniLM-L6 (loaded as a job
loads it: eager attention on a CPU), on the same 24 examples (3 seeds' batches of 8, as a PT
job's step), under bf16 autocast, one optimizer step each:

    replicate   the PT job's own step: the model ``METHODS["pt"].build`` makes (one prompt and
                span head per seed), ``GroupTrainer._seed_losses``, backward, AdamW
    peft        ``get_peft_model(backbone, PromptTuningConfig(num_virtual_tokens=20))``, the
                examples' tokens without our prompt slots (peft prepends its own 20), a linear
                head on the [CLS] state, cross-entropy, backward, AdamW

Each forward pass therefore sees the same positions (``--peer-attention default`` gives peft
the backbone as transformers loads it, sdpa, as a user of peft would run it). peft trains one prompt (not one per
seed) and reads a linear head rather than MRC spans: the head's work is negligible beside
the backbone's. Prints the median seconds per step of each arm over alternating rounds and
the median of the per-round ratios peft / replicate (>= 1.0: ours is at least as fast).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from replicate.backbones import BACKBONES, attention_for  # noqa: E402
from replicate.methods import METHODS  # noqa: E402
from replicate.mrc import PROMPT_SLOT_FIRST_ID  # noqa: E402
from replicate.splits import Protocol, draw_split, resolve  # noqa: E402
from replicate.tasks import TASKS  # noqa: E402
from replicate.train import GroupTrainer, SeedData, autocast  # noqa: E402

SEEDS = [8, 13, 21]


def timed(step, steps: int) -> float:
    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", default="bbc-topic")
    p.add_argument("--data-dir", default=str(REPO / "data" / "corpora"))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=3, help="steps a round, per arm")
    p.add_argument("--peer-attention", choices=["ours", "default"], default="ours",
                   help="peft's backbone with our attention (the same arithmetic) or transformers' default (sdpa)")
    args = p.parse_args()
    try:
        from peft import PromptTuningConfig, TaskType, get_peft_model
    except ImportError:
        sys.exit("peft_peer: peft is not installed (see this file's first lines)")

    torch.set_num_threads(1)
    spec, task, method = BACKBONES.get("minilm-l6"), TASKS.get(args.task), METHODS.get("pt")
    cfg = method.make_config({"batch_size": 8, "max_length": 128, "prompt_length": 20, "precision": "bf16",
                              "init": "uniform"})
    cpu = torch.device("cpu")
    pools = task.load_pools(args.data_dir)
    backbone, tok = spec.load(attention=attention_for(cpu))
    enc = method.encoder(tok, task, cfg, spec)
    items, owners = [], []
    for s, seed in enumerate(SEEDS):
        train = resolve(draw_split(task, pools, 32, seed, Protocol(test_cap=1)), pools)["train"][:8]
        items += [enc.encode(ex) for ex in train]
        owners += [s] * len(train)

    model = method.build(backbone, spec, tok, cfg, SEEDS)
    trainer = GroupTrainer(model, method, cfg, task, enc, [SeedData(s, [], [], []) for s in SEEDS],
                           tok.pad_token_id, log=lambda m: None)
    model.eval()
    ours_opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-3)

    def ours():
        ours_opt.zero_grad(set_to_none=True)
        trainer._seed_losses(items, owners).sum().backward()
        ours_opt.step()

    # peft's arm: the same examples' tokens less our prompt slots (peft prepends its own)
    peer_backbone, _ = spec.load(attention=attention_for(cpu) if args.peer_attention == "ours" else None)
    peer = get_peft_model(peer_backbone, PromptTuningConfig(task_type=TaskType.FEATURE_EXTRACTION,
                                                            num_virtual_tokens=cfg.prompt_length))
    peer.eval()
    slots = range(1, 1 + cfg.prompt_length)  # our prompt slots follow [CLS] (mrc.MRCEncoder)
    assert all(e.input_ids[i] == PROMPT_SLOT_FIRST_ID + k for e in items for k, i in enumerate(slots))
    rows = [e.input_ids[:1] + e.input_ids[1 + cfg.prompt_length:] for e in items]
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), tok.pad_token_id)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)], mask[i, :len(r)] = torch.tensor(r), 1
    labels = torch.tensor([e.label or 0 for e in items])
    head = torch.nn.Linear(spec.d_model, len(task.labels))
    peer_opt = torch.optim.AdamW([q for q in peer.parameters() if q.requires_grad] + list(head.parameters()), lr=1e-3)

    def theirs():
        peer_opt.zero_grad(set_to_none=True)
        with autocast("bf16", cpu):
            hidden = peer(input_ids=ids, attention_mask=mask).last_hidden_state
        loss = torch.nn.functional.cross_entropy(head(hidden[:, 0].float()), labels)
        loss.backward()
        peer_opt.step()

    positions = sum(len(e.input_ids) for e in items), int(mask.sum()) + len(rows) * cfg.prompt_length
    print(f"{args.task}: peft's backbone attention {peer_backbone.config._attn_implementation}; "
          f"{len(items)} examples, positions {positions[0]} (replicate) / {positions[1]} (peft)")
    seconds = {"replicate": [], "peft": []}
    for _ in range(args.rounds):
        seconds["replicate"].append(timed(ours, args.steps))
        seconds["peft"].append(timed(theirs, args.steps))
    ratio = statistics.median(b / a for a, b in zip(seconds["replicate"], seconds["peft"]))
    print(f"seconds a step, median of {args.rounds} rounds: replicate {statistics.median(seconds['replicate']):.3f}, "
          f"peft {statistics.median(seconds['peft']):.3f}; peft / replicate = {ratio:.2f}")


if __name__ == "__main__":
    main()
