"""Train one (method, backbone, task, shot) group of seeds and write one result per seed.

Seed-batched methods train all seeds against ONE frozen backbone: a step concatenates each
seed's own minibatch (its own split, its own shuffling order) and every example is routed
to its seed's prompt and head. Per seed: own init (generators keyed by the seed), own
optimizer state (Adam is elementwise over the stacked tensors, so one Adam over the stack
equals one Adam per seed), own gradient clipping, own best-on-dev checkpoint, own result.
Methods that change the backbone (model tuning) run the same loop once per seed.

A seed's result file is written atomically as soon as that seed is done; a failure inside a
seed's training is recorded in its result (status "failed") instead of losing the others.
"""

from __future__ import annotations

import math
import random
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F

from .metrics import score
from .mrc import Encoded, MRCEncoder


@dataclass
class Batch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor
    seed_index: torch.Tensor
    option_starts: torch.Tensor  # (B, K); zeros for extractive
    option_ends: torch.Tensor
    option_mask: torch.Tensor    # (B, K) bool
    labels: torch.Tensor         # (B,) option index; -1 if none
    answer_starts: torch.Tensor  # (B,) extractive gold start; -1 if none
    answer_ends: torch.Tensor
    context_mask: torch.Tensor   # (B, T) bool: tokens an extractive answer may cover


def collate(items: Sequence[Encoded], seed_index: Sequence[int], pad_id: int, device=None) -> Batch:
    n = len(items)
    width = max(len(e.input_ids) for e in items)
    k = max(1, max(len(e.option_starts) for e in items))
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    types = torch.zeros((n, width), dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    starts = torch.zeros((n, k), dtype=torch.long)
    ends = torch.zeros((n, k), dtype=torch.long)
    omask = torch.zeros((n, k), dtype=torch.bool)
    labels = torch.full((n,), -1, dtype=torch.long)
    a_start = torch.full((n,), -1, dtype=torch.long)
    a_end = torch.full((n,), -1, dtype=torch.long)
    cmask = torch.zeros((n, width), dtype=torch.bool)
    for i, e in enumerate(items):
        t = len(e.input_ids)
        ids[i, :t] = torch.tensor(e.input_ids)
        types[i, :t] = torch.tensor(e.token_type_ids)
        mask[i, :t] = 1
        m = len(e.option_starts)
        if m:
            starts[i, :m] = torch.tensor(e.option_starts)
            ends[i, :m] = torch.tensor(e.option_ends)
            omask[i, :m] = True
        if e.label is not None:
            labels[i] = e.label
        if e.answer_span is not None:
            a_start[i], a_end[i] = e.answer_span
        c0, c1 = e.context_range
        cmask[i, c0:c1] = True
    batch = Batch(ids, mask, types, torch.tensor(list(seed_index), dtype=torch.long), starts, ends, omask, labels,
                  a_start, a_end, cmask)
    if device is not None and device.type != "cpu":
        batch = Batch(*(t.to(device, non_blocking=True) for t in vars(batch).values()))
    return batch


def _option_scores(logits: torch.Tensor, batch: Batch):
    start = logits[..., 0].gather(1, batch.option_starts).masked_fill(~batch.option_mask, -1e4)
    end = logits[..., 1].gather(1, batch.option_ends).masked_fill(~batch.option_mask, -1e4)
    return start, end


def example_losses(logits: torch.Tensor, batch: Batch, extractive: bool) -> torch.Tensor:
    """Per-example loss: start CE + end CE, over option spans (MP2's label mask) or context."""
    if extractive:
        keep = batch.answer_starts >= 0
        start = logits[..., 0].masked_fill(~batch.context_mask, -1e4)
        end = logits[..., 1].masked_fill(~batch.context_mask, -1e4)
        loss = (F.cross_entropy(start, batch.answer_starts.clamp(min=0), reduction="none")
                + F.cross_entropy(end, batch.answer_ends.clamp(min=0), reduction="none"))
        return loss * keep
    start, end = _option_scores(logits, batch)
    return F.cross_entropy(start, batch.labels, reduction="none") + F.cross_entropy(end, batch.labels, reduction="none")


def predictions(logits: torch.Tensor, batch: Batch, extractive: bool, max_answer_tokens: int) -> List:
    """Option index per example, or (start, end) token span for extractive tasks."""
    if not extractive:
        start, end = _option_scores(logits, batch)
        return (start + end).argmax(dim=1).tolist()
    out = []
    for i in range(logits.shape[0]):
        s = logits[i, :, 0].masked_fill(~batch.context_mask[i], -1e4)
        e = logits[i, :, 1].masked_fill(~batch.context_mask[i], -1e4)
        pair = s[:, None] + e[None, :]
        t = pair.shape[0]
        allowed = torch.triu(torch.ones(t, t, dtype=torch.bool)) & ~torch.triu(
            torch.ones(t, t, dtype=torch.bool), diagonal=max_answer_tokens)
        best = pair.masked_fill(~allowed, -1e9).argmax().item()
        out.append((best // t, best % t))
    return out


def seed_axis_parameters(model) -> List[torch.nn.Parameter]:
    """Trainable tensors whose first axis is the seed (prompt and head)."""
    modules = [m for m in (model.prompt, model.head) if m is not None]
    return [p for m in modules for p in m.parameters() if p.requires_grad]


def clip_per_seed(seed_params: Sequence[torch.Tensor], other_params: Sequence[torch.Tensor], n_seeds: int,
                  max_norm: float) -> None:
    """Clip each seed's gradient to ``max_norm`` on its own. ``other_params`` (no seed axis)
    only exist when a single seed trains (model tuning) and join that seed's norm."""
    if max_norm <= 0:
        return
    device = seed_params[0].device if seed_params else "cpu"
    sq = torch.zeros(n_seeds, device=device)
    for p in seed_params:
        if p.grad is not None:
            sq += p.grad.detach().pow(2).reshape(n_seeds, -1).sum(1)
    for p in other_params:
        if p.grad is not None:
            sq += p.grad.detach().pow(2).sum()
    scale = (max_norm / (sq.sqrt() + 1e-6)).clamp(max=1.0)
    for p in seed_params:
        if p.grad is not None:
            p.grad.mul_(scale.view(-1, *([1] * (p.grad.dim() - 1))))
    for p in other_params:
        if p.grad is not None:
            p.grad.mul_(scale[0])


@dataclass
class SeedData:
    seed: int
    train: List[Encoded]
    dev: List[Encoded]
    test: List[Encoded]


@dataclass
class SeedOutcome:
    seed: int
    status: str = "ok"
    error: str = ""
    best_epoch: int = 0
    best_dev: float = float("-inf")
    dev_curve: List = field(default_factory=list)
    loss_curve: List = field(default_factory=list)
    test_metrics: Dict[str, float] = field(default_factory=dict)


class GroupTrainer:
    """Runs the training loop for ``model`` over the seeds in ``data`` (in seed-index order)."""

    def __init__(self, model, method, cfg, task, encoder: MRCEncoder, data: List[SeedData], pad_id: int,
                 log: Callable[[str], None] = print):
        self.model, self.method, self.cfg, self.task = model, method, cfg, task
        self.encoder, self.data, self.pad_id, self.log = encoder, data, pad_id, log
        self.extractive = task.kind == "extractive"
        self.n = len(data)
        self.device = next(model.parameters()).device

    def _forward(self, batch: Batch) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.precision == "bf16"):
            logits = self.model(batch.input_ids, batch.attention_mask, batch.token_type_ids, batch.seed_index)
        return logits.float()

    def _evaluate(self, split: str) -> List[List]:
        """Predictions per seed on ``split``, with all (seed, example) pairs in shared batches."""
        self.model.eval()
        seeds = range(self.n)
        pairs = [(s, e) for s in seeds for e in getattr(self.data[s], split)]
        preds: List = []
        with torch.no_grad():
            for i in range(0, len(pairs), self.cfg.eval_batch_size):
                chunk = pairs[i:i + self.cfg.eval_batch_size]
                batch = collate([e for _, e in chunk], [s for s, _ in chunk], self.pad_id, self.device)
                logits = self._forward(batch)
                preds += predictions(logits, batch, self.extractive, self.encoder.max_answer_tokens)
        out, cursor = [], 0
        for s in seeds:
            k = len(getattr(self.data[s], split))
            out.append(preds[cursor:cursor + k])
            cursor += k
        return out

    def _score(self, encs: List[Encoded], preds: List) -> Dict[str, float]:
        if self.extractive:
            texts = [self.encoder.decode_span(e, a, b) for e, (a, b) in zip(encs, preds)]
            return score(self.task, texts, [e.answers for e in encs])
        return score(self.task, preds, [e.label for e in encs])

    def fit(self) -> List[SeedOutcome]:
        cfg, n = self.cfg, self.n
        outcomes = [SeedOutcome(seed=d.seed) for d in self.data]
        seed_params = seed_axis_parameters(self.model)
        seed_ids = {id(p) for p in seed_params}
        groups = self.method.param_groups(self.model, cfg)
        other_params = [p for g in groups for p in g["params"] if id(p) not in seed_ids and p.requires_grad]
        optimizer = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
        orders = [random.Random(d.seed) for d in self.data]
        n_train = len(self.data[0].train)
        if any(len(d.train) != n_train for d in self.data):
            raise ValueError("every seed of a group must have the same number of training examples")
        steps = math.ceil(n_train / cfg.batch_size)
        best_state: List[Optional[Dict[str, torch.Tensor]]] = [None] * n
        for epoch in range(1, cfg.epochs + 1):
            self.model.train()
            perms = []
            for s in range(n):
                idx = list(range(n_train))
                orders[s].shuffle(idx)
                perms.append(idx)
            epoch_loss = torch.zeros(n)
            for step in range(steps):
                items, owners = [], []
                for s in range(n):
                    for j in perms[s][step * cfg.batch_size:(step + 1) * cfg.batch_size]:
                        items.append(self.data[s].train[j])
                        owners.append(s)
                batch = collate(items, owners, self.pad_id, self.device)
                logits = self._forward(batch)
                losses = example_losses(logits, batch, self.extractive)
                per_seed = torch.zeros(n, device=self.device).index_add(0, batch.seed_index, losses)
                counts = torch.bincount(batch.seed_index, minlength=n).clamp(min=1)
                seed_loss = per_seed / counts
                if not torch.isfinite(seed_loss).all():
                    raise FloatingPointError(f"non-finite loss at epoch {epoch}: {seed_loss.tolist()}")
                optimizer.zero_grad(set_to_none=True)
                seed_loss.sum().backward()
                clip_per_seed(seed_params, other_params, n, cfg.grad_clip)
                optimizer.step()
                epoch_loss += seed_loss.detach().cpu()
            for s in range(n):
                outcomes[s].loss_curve.append(round(float(epoch_loss[s]) / steps, 5))
            if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
                dev_preds = self._evaluate("dev")
                for s in range(n):
                    dev = self._score(self.data[s].dev, dev_preds[s])[self.task.metric]
                    outcomes[s].dev_curve.append([epoch, round(dev, 5)])
                    if dev > outcomes[s].best_dev:
                        outcomes[s].best_dev, outcomes[s].best_epoch = dev, epoch
                        best_state[s] = self._snapshot(s)
                self.log(f"epoch {epoch}: loss " + " ".join(f"{x:.3f}" for x in (epoch_loss / steps).tolist())
                         + " | dev " + " ".join(f"{o.dev_curve[-1][1]:.3f}" for o in outcomes))
        for s in range(n):
            self._restore(s, best_state[s])
        test_preds = self._evaluate("test")
        for s in range(n):
            outcomes[s].test_metrics = self._score(self.data[s].test, test_preds[s])
        return outcomes

    def _trainables(self, s: int) -> Dict[str, torch.Tensor]:
        out = {}
        for name, p in self.model.named_parameters():
            if p.requires_grad:
                is_seed_axis = name.startswith(("prompt.", "head."))
                out[name] = p[s] if is_seed_axis else p
        return out

    def _snapshot(self, s: int) -> Dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self._trainables(s).items()}

    def _restore(self, s: int, state: Optional[Dict[str, torch.Tensor]]) -> None:
        if state is None:
            return
        with torch.no_grad():
            for k, v in self._trainables(s).items():
                v.copy_(state[k])


def run_group(method, cfg, spec, task, backbone, tokenizer, pristine: Optional[dict], seed_data: List[SeedData],
              encoder: MRCEncoder, on_done: Callable[[SeedOutcome, float], None], log=print,
              device: Optional[torch.device] = None) -> None:
    """Train ``seed_data`` with ``method``; call ``on_done(outcome, wall_s)`` per finished seed.

    Seed-batched methods train all seeds at once; others train each seed from ``pristine``
    (the backbone's original state dict). A seed whose training raises is reported as
    failed; the exception does not cross into other seeds' results.
    """
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    groups = [seed_data] if method.seed_batched else [[d] for d in seed_data]
    for group in groups:
        # Dropout masks come from the global generator: reset it per group so a seed's result
        # does not depend on which seeds ran before it in the same job.
        torch.manual_seed(group[0].seed)
        start = time.perf_counter()
        model = None
        try:
            if pristine is not None:
                backbone.load_state_dict(pristine)
            model = method.build(backbone, spec, tokenizer, cfg, [d.seed for d in group]).to(device or "cpu")
            outcomes = GroupTrainer(model, method, cfg, task, encoder, group, pad, log).fit()
        except Exception as exc:  # recorded per seed; the job goes on with the next group
            log(traceback.format_exc())
            outcomes = [SeedOutcome(seed=d.seed, status="failed", error=f"{type(exc).__name__}: {exc}")
                        for d in group]
        finally:
            for hook in getattr(model, "_hooks", ()):
                hook.remove()  # the backbone is shared with the next group
        wall = time.perf_counter() - start
        for outcome in outcomes:
            on_done(outcome, wall)


def outcome_dict(o: SeedOutcome) -> dict:
    d = asdict(o)
    if not math.isfinite(d["best_dev"]):
        d["best_dev"] = None
    return d
