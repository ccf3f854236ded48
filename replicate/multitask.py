"""Train every task of a task set together, for several seeds at once (ComPT): one job, one
cell per (task, seed).

A row of the model is one (seed, task) pair, row = seed_index * n_tasks + task_index: each
example is routed to its row's prompt, so the seeds share one frozen backbone and never
each other's parameters (every trainable tensor has the seed axis), while the tasks of a
seed share what the method shares between them (ComPT's source prompts).

Per seed: one stream over the union of its tasks' training examples, reshuffled every epoch
by the seed's own generator, ``batch_size`` examples a step (the authors' trainer draws
from the concatenation of the tasks' sets); its own optimizer state, gradient clipping and
divergence check (a diverged seed stops, its cells are recorded as failed, the other seeds
go on). Per (seed, task): its own dev curve and, with ``select_on_dev``, its own best
checkpoint, kept as the row's state (``Method.row_states``: the composed prompt's parts,
small) rather than as every parameter. The test and the masking evaluation read those
states (``Method.frozen_model``).
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import replace
from typing import Callable, Dict, List, Optional, Sequence

import torch

from .logs import Progress
from .model import has_seed_axis
from .train import SeedData, SeedOutcome, autocast, diverged, lr_lambda, split_by_sizes, step_active_seeds


def batch_kind(formulation):
    """Tasks one forward pass can take together: the same formulation and, on MRC, the same
    answer kind (a span, or one of the options)."""
    return type(formulation).__name__, getattr(formulation, "extractive", None)


def mask_slots(model, batch):
    """``batch`` with the prompt slots its rows' masks drop taken out of the attention mask
    (``prompt.slot_keep`` (rows, L); ComPT's MCAT masks a source so), as it is otherwise."""
    keep = getattr(model.prompt, "slot_keep", None)
    if keep is None:
        return batch
    k = keep[batch.seed_index].to(batch.attention_mask.dtype)  # (B, L)
    start = getattr(batch, "prompt_start", None)
    if start is None:  # MRC: the slots follow [CLS]
        start = torch.full_like(batch.seed_index, model.prompt_offset)
    positions = (start[:, None] + torch.arange(k.shape[1], device=k.device)).clamp(min=0)
    mask = batch.attention_mask.clone()
    has = (start >= 0)[:, None]
    mask.scatter_(1, positions, torch.where(has, mask.gather(1, positions) * k, mask.gather(1, positions)))
    return replace(batch, attention_mask=mask)


def predict_states(method, cfg, model, formulations, states: Sequence[Dict], tasks_of_rows: Sequence[int],
                   examples: Sequence[Sequence], pad_id: int, device, masks: Optional[Sequence] = None,
                   final: bool = True) -> List[List]:
    """Predictions of every frozen row: row i has ``states[i]`` (``Method.row_states``), task
    ``tasks_of_rows[i]`` (an index into ``formulations``), mask ``masks[i]`` (None: keep all)
    and is evaluated on ``examples[i]``. Rows of one task share batches."""
    frozen = method.frozen_model(model, cfg, states, masks or [None] * len(states)).to(device)
    out: List[List] = [[] for _ in states]
    try:
        frozen.eval()
        for t in sorted(set(tasks_of_rows)):
            rows = [i for i, k in enumerate(tasks_of_rows) if k == t]
            pairs = [(i, e) for i in rows for e in examples[i]]
            f, preds = formulations[t], []
            with torch.no_grad():
                for i in range(0, len(pairs), cfg.eval_batch_size):
                    chunk = pairs[i:i + cfg.eval_batch_size]
                    batch = mask_slots(frozen, f.collate([e for _, e in chunk], [r for r, _ in chunk], pad_id, device))
                    with autocast(cfg.precision, device):
                        preds += f.predict(frozen, batch, final)
            for i, p in zip(rows, split_by_sizes(preds, [len(examples[i]) for i in rows])):
                out[i] = p
    finally:
        for hook in getattr(frozen, "_hooks", ()):
            hook.remove()
    return out


class TaskSetTrainer:
    """Runs the multi-task loop for ``model`` over ``data[task][seed index]``."""

    def __init__(self, model, method, cfg, tasks, formulations, encoders, data: List[List[SeedData]], pad_id: int,
                 log: Callable[[str], None] = print):
        self.model, self.method, self.cfg, self.tasks = model, method, cfg, tasks
        self.formulations, self.encoders, self.data, self.pad_id, self.log = formulations, encoders, data, pad_id, log
        self.n_tasks, self.n_seeds = len(tasks), len(data[0])
        self.device = next(model.parameters()).device

    def row(self, s: int, t: int) -> int:
        return s * self.n_tasks + t

    def _states(self, keys) -> List[Dict]:
        return self.method.row_states(self.model, [self.row(s, t) for s, t in keys])

    def _predict(self, keys, states, split: str) -> Dict[tuple, List]:
        examples = [getattr(self.data[t][s], split) for s, t in keys]
        preds = predict_states(self.method, self.cfg, self.model, self.formulations, states, [t for _, t in keys],
                               examples, self.pad_id, self.device, final=split == "test")
        return dict(zip(keys, preds))

    def _score(self, t: int, s: int, split: str, preds) -> Dict[str, float]:
        return self.formulations[t].score(self.encoders[t], getattr(self.data[t][s], split), preds)

    def fit(self):
        """(outcomes[task][seed index], the tested state of each row {(seed index, task index): state})."""
        cfg, T, S = self.cfg, self.n_tasks, self.n_seeds
        outcomes = [[SeedOutcome(seed=self.data[t][s].seed) for s in range(S)] for t in range(T)]
        sizes = [len(self.data[t][0].train) for t in range(T)]
        if any(len(self.data[t][s].train) != sizes[t] for t in range(T) for s in range(S)):
            raise ValueError("every seed must have the same number of training examples of a task")
        pool = [(t, j) for t in range(T) for j in range(sizes[t])]
        batch_size = cfg.batch_size or len(pool)
        steps = math.ceil(len(pool) / batch_size)
        total_steps = cfg.epochs * steps
        groups = self.method.param_groups(self.model, cfg)
        params = [p for g in groups for p in g["params"]]
        if not all(has_seed_axis(p) for p in params):
            raise ValueError("a multi-task method's trainable tensors must all carry the seed axis")
        optimizer = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lr_lambda(cfg.lr_schedule, cfg.warmup, total_steps, cfg.warmup_steps))
        orders = [random.Random(self.data[0][s].seed) for s in range(S)]
        best: Dict[tuple, Optional[Dict]] = {(s, t): None for s in range(S) for t in range(T)}
        first_loss: List[Optional[float]] = [None] * S
        active = list(range(S))
        kinds = [batch_kind(f) for f in self.formulations]
        step_no = 0
        self.meter, self.steps_per_epoch = Progress(total_steps, self.log), steps  # rate and ETA in the log only
        for epoch in range(1, cfg.epochs + 1):
            self.model.train(cfg.train_mode)
            perms = []
            for s in range(S):
                idx = list(range(len(pool)))
                orders[s].shuffle(idx)  # every seed's stream advances, active or not
                perms.append(idx)
            row_loss = torch.zeros(S * T)
            row_count = torch.zeros(S * T)
            for step in range(steps):
                if not active:
                    break
                self.method.on_step(self.model, cfg, step_no, total_steps)  # e.g. ComPT's annealed temperature
                by_kind: Dict = {}
                for s in active:
                    for i in perms[s][step * batch_size:(step + 1) * batch_size]:
                        t, j = pool[i]
                        items, rows = by_kind.setdefault(kinds[t], ([], []))
                        items.append(self.data[t][s].train[j])
                        rows.append(self.row(s, t))
                losses, rows_all = [], []
                for items, rows in by_kind.values():
                    f = self.formulations[rows[0] % T]
                    batch = f.collate(items, rows, self.pad_id, self.device)
                    with autocast(cfg.precision, self.device):
                        losses.append(f.example_losses(self.model, batch).float())
                    rows_all.append(batch.seed_index)
                losses_t, rows_t = torch.cat(losses), torch.cat(rows_all)
                seeds_t = torch.div(rows_t, T, rounding_mode="floor")
                per_seed = torch.zeros(S, device=self.device).index_add(0, seeds_t, losses_t)
                seed_loss = per_seed / torch.bincount(seeds_t, minlength=S).clamp(min=1)
                values = seed_loss.detach().cpu().tolist()
                for s in list(active):
                    first_loss[s] = values[s] if first_loss[s] is None else first_loss[s]
                    reason = diverged(values[s], first_loss[s], cfg.diverge_factor)
                    if reason:
                        for t in range(T):
                            outcomes[t][s].status = "failed"
                            outcomes[t][s].error = f"diverged at epoch {epoch}: {reason}"
                        active.remove(s)
                        self.log(f"seed {self.data[0][s].seed}: diverged at epoch {epoch}: {reason}")
                if not active:
                    break
                step_active_seeds(optimizer, scheduler, seed_loss, active, params, [], cfg.grad_clip)
                step_no += 1
                self.meter.tick(step_no)
                row_loss.index_add_(0, rows_t.cpu(), losses_t.detach().cpu())
                row_count.index_add_(0, rows_t.cpu(), torch.ones(len(rows_t)))
            for s in active:
                for t in range(T):
                    r = self.row(s, t)
                    outcomes[t][s].loss_curve.append(round(float(row_loss[r] / row_count[r].clamp(min=1)), 5))
            if active and (epoch % cfg.eval_every == 0 or epoch == cfg.epochs):
                self._dev(epoch, active, outcomes, best)
        keys = [(s, t) for s in active for t in range(T)]
        current = dict(zip(keys, self._states(keys)))
        tested = {k: (best[k] if cfg.select_on_dev and best[k] is not None else current[k]) for k in keys}
        preds = self._predict(keys, [tested[k] for k in keys], "test")
        for s, t in keys:
            o = outcomes[t][s]
            o.test_metrics = self._score(t, s, "test", preds[(s, t)])
            o.test_details = self.formulations[t].details(self.encoders[t], self.data[t][s].test, preds[(s, t)])
        return outcomes, tested

    def _dev(self, epoch: int, active: List[int], outcomes, best) -> None:
        keys = [(s, t) for s in active for t in range(self.n_tasks)]
        states = self._states(keys)
        preds = self._predict(keys, states, "dev")
        line = []
        for (s, t), state in zip(keys, states):
            task = self.tasks[t]
            dev = self._score(t, s, "dev", preds[(s, t)])[self.cfg.select_metric or task.metric]
            o = outcomes[t][s]
            o.dev_curve.append([epoch, round(dev, 5)])
            if dev > o.best_dev:
                o.best_dev, o.best_epoch = dev, epoch
                best[(s, t)] = state
            line.append(f"{dev:.3f}")
        names = ", ".join(t.name for t in self.tasks)
        self.log(f"epoch {epoch}: dev " + " ".join(line) + f" (seed-major, tasks {names})"
                 + f" | {self.meter.text(epoch * self.steps_per_epoch)}")



def run_task_set(method, cfg, spec, tasks, backbone, tokenizer, data: List[List[SeedData]], encoders, log=print,
                 device: Optional[torch.device] = None):
    """Train the task set; (outcomes[task][seed index], tested row states[(seed index, task
    index)] or {} when training failed, wall seconds). A failure inside training fails
    every cell of the job with the reason, instead of a traceback without results."""
    import traceback

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    seeds = [d.seed for d in data[0]]
    torch.manual_seed(seeds[0])  # dropout masks: the same for a job whatever ran before it
    start = time.perf_counter()
    model = None
    try:
        model = method.build_set(backbone, spec, tokenizer, cfg, seeds, [t.name for t in tasks]).to(device or "cpu")
        formulations = [method.formulation(cfg, t) for t in tasks]
        outcomes, tested = TaskSetTrainer(model, method, cfg, tasks, formulations, encoders, data, pad, log).fit()
    except Exception as exc:
        log(traceback.format_exc())
        outcomes = [[SeedOutcome(seed=s, status="failed", error=f"{type(exc).__name__}: {exc}") for s in seeds]
                    for _ in tasks]
        tested = {}
    finally:
        for hook in getattr(model, "_hooks", ()):
            hook.remove()
    return outcomes, tested, time.perf_counter() - start
