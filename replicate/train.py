"""Train one (method, backbone, task, shot) group of seeds and write one result per seed.

Seed-batched methods train all seeds against ONE frozen backbone: a step concatenates each
seed's own minibatch (its own split, its own shuffling order) and every example is routed
to its seed's prompt and head. Per seed: own init (generators keyed by the seed), own
optimizer state (Adam is elementwise over the stacked tensors, so one Adam over the stack
equals one Adam per seed), own gradient clipping (off by default, as in MPMP), own
best-on-dev checkpoint, own result.
Methods that change the backbone (model tuning) run the same loop once per seed.

A seed's result file is written atomically as soon as that seed is done; a failure inside a
seed's training is recorded in its result (status "failed") instead of losing the others: a
seed whose loss diverges (not finite, or ``diverge_factor`` times its first step's) stops
while the other seeds of its group train on.
"""

from __future__ import annotations

import math
import random
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import torch

from .batching import call_overhead_positions, in_length_order, padding_chunks
from .logs import Progress
from .model import has_seed_axis


@dataclass
class Stage:
    """One stage of training: ``epochs`` passes with a fresh AdamW over ``groups`` (torch
    param-group dicts with their own "lr"); only those parameters train, the others are
    frozen (a frozen MP2 router takes its inference form by itself). ``enter`` runs when the
    stage starts (e.g. to set a temperature). ``name`` labels the stage in the result.
    ``selects``: False for a stage whose checkpoints may not be the tested one (SPoT's
    retrieval probe): it is not evaluated on dev. ``leave(seeds)`` runs when the stage ends,
    with the seed indices still training, and returns what to record per seed index in the
    stage's entry of the result (e.g. which source prompt it took)."""

    name: str
    epochs: int
    groups: List[Dict]
    enter: Optional[Callable[[], None]] = None
    selects: bool = True
    leave: Optional[Callable[[List[int]], Dict[int, Dict]]] = None


def seed_axis_parameters(params) -> List[torch.nn.Parameter]:
    """The tensors among ``params`` whose first axis is the seed (``model.with_seed_axis``)."""
    return [p for p in params if has_seed_axis(p)]


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


def diverged(loss: float, first: Optional[float], factor: float) -> str:
    """Why a seed's step loss counts as divergence ("" if it does not): not finite, or above
    ``factor`` times its first step's (0 disables the multiple)."""
    if not math.isfinite(loss):
        return f"loss is {loss}"
    if factor > 0 and first is not None and first > 0 and loss > factor * first:
        return f"loss {loss:.4g} > {factor:g} x the first step's {first:.4g}"
    return ""


def step_active_seeds(optimizer, scheduler, seed_loss: torch.Tensor, active: Sequence[int], seed_params,
                      other_params, max_norm: float) -> None:
    """One optimizer step on the seeds still training: the sum of their losses back-propagated
    (``seed_loss``: one per seed), the gradient slices of stopped seeds zeroed (a stopped
    seed's slice may hold NaN: it must not move), each seed clipped on its own."""
    n = seed_loss.shape[0]
    keep = torch.zeros(n, dtype=torch.bool, device=seed_loss.device)
    keep[list(active)] = True
    optimizer.zero_grad(set_to_none=True)
    torch.where(keep, seed_loss, torch.zeros_like(seed_loss)).sum().backward()
    for p in seed_params:
        if p.grad is not None:
            p.grad[~keep] = 0
    clip_per_seed(seed_params, other_params, n, max_norm)
    optimizer.step()
    scheduler.step()


def predict_rows(formulation, model, pairs: Sequence, pad_id: int, device, batch_size: int,
                 precision: str = "fp32", final: bool = True) -> List:
    """Predictions for (row, encoded example) pairs, ``batch_size`` at a time, without
    gradients; the row (a seed, or a task in pre-training) picks the prompt. ``final``: the
    test set (every answer reader of the formulation runs; on dev only the selecting one)."""
    def predict(idx: List[int]) -> List:
        batch = formulation.collate([pairs[i][1] for i in idx], [pairs[i][0] for i in idx], pad_id, device)
        with autocast(precision, device):
            return formulation.predict(model, batch, final)

    with torch.inference_mode():  # length order: little padding
        return in_length_order([e for _, e in pairs], batch_size, predict)


def split_by_sizes(values: Sequence, sizes: Sequence[int]) -> List[List]:
    """``values`` cut into consecutive pieces of ``sizes`` (one per row of a shared batch)."""
    out, cursor = [], 0
    for k in sizes:
        out.append(list(values[cursor:cursor + k]))
        cursor += k
    return out


def autocast(precision: str, device):
    """bfloat16 autocast of the backbone's forward when ``precision`` is bf16 (a no-op otherwise)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def lr_lambda(schedule: str, warmup: float, total_steps: int, warmup_steps: int = 0) -> Callable[[int], float]:
    """The learning-rate factor of optimizer step ``i`` (0-based) of ``total_steps``: a linear
    warm-up over the first ``warmup`` fraction of the steps (or ``warmup_steps`` steps), then
    constant ("constant") or linear decay to 0 at the end ("linear", transformers'
    ``get_linear_schedule_with_warmup``, which ATTEMPT's and ComPT's trainers use). As
    there, step i of the warm-up has factor i / warmup, so the first step's is 0."""
    warm = int(round(warmup * total_steps)) if warmup else warmup_steps

    def factor(i: int) -> float:
        if i < warm:
            return i / warm
        if schedule == "linear":
            return max(0.0, (total_steps - i) / max(1, total_steps - warm))
        return 1.0
    return factor


@dataclass
class SeedData:
    seed: int
    train: List  # encoded examples (the formulation's encoder's items)
    dev: List
    test: List


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
    test_details: Dict = field(default_factory=dict)  # the formulation's ``details`` of the tested checkpoint
    # per stage: name, first and last epoch, its best dev epoch and score, and (for all but
    # the last stage) the test metrics of that best checkpoint ("stage I alone")
    stages: List[Dict] = field(default_factory=list)
    # what the tested checkpoint adds to the frozen backbone at inference, for an input prompt
    # (``GroupTrainer._inference_tensors``): the job saves it beside the result, never in it
    inference_tensors: Dict[str, torch.Tensor] = field(default_factory=dict, repr=False)


class GroupTrainer:
    """Runs the training loop for ``model`` over the seeds in ``data`` (in seed-index order)."""

    def __init__(self, model, method, cfg, task, encoder, data: List[SeedData], pad_id: int,
                 log: Callable[[str], None] = print):
        self.model, self.method, self.cfg, self.task = model, method, cfg, task
        self.encoder, self.data, self.pad_id, self.log = encoder, data, pad_id, log
        self.formulation = method.formulation(cfg, task)
        self.n = len(data)
        self.device = next(model.parameters()).device
        self.call_overhead = call_overhead_positions(model)  # where cutting a step into passes pays

    def _evaluate(self, split: str, seeds: Sequence[int]) -> Dict[int, List]:
        """Predictions of each seed in ``seeds`` on ``split``, all (seed, example) pairs in
        shared batches (every answer reader on the test set, the selecting one on dev)."""
        self.model.eval()
        pairs = [(s, e) for s in seeds for e in getattr(self.data[s], split)]
        preds = predict_rows(self.formulation, self.model, pairs, self.pad_id, self.device, self.cfg.eval_batch_size,
                             self.cfg.precision, final=split == "test")
        return dict(zip(seeds, split_by_sizes(preds, [len(getattr(self.data[s], split)) for s in seeds])))

    def _score(self, encs: List, preds: List) -> Dict[str, float]:
        return self.formulation.score(self.encoder, encs, preds)

    def _diverged(self, loss: float, first: Optional[float]) -> str:
        return diverged(loss, first, self.cfg.diverge_factor)

    def fit(self) -> List[SeedOutcome]:
        cfg, n = self.cfg, self.n
        outcomes = [SeedOutcome(seed=d.seed) for d in self.data]
        stages = self.method.stages(self.model, cfg)
        trained = {id(p): p for st in stages for g in st.groups for p in g["params"]}
        self.trained_names = [name for name, p in self.model.named_parameters() if id(p) in trained]
        orders = [random.Random(d.seed) for d in self.data]
        n_train = len(self.data[0].train)
        if any(len(d.train) != n_train for d in self.data):
            raise ValueError("every seed of a group must have the same number of training examples")
        batch_size = cfg.batch_size or n_train
        steps = math.ceil(n_train / batch_size)
        best_state: List[Optional[Dict[str, torch.Tensor]]] = [None] * n
        first_loss: List[Optional[float]] = [None] * n
        active = list(range(n))
        epoch = 0
        meter = Progress(sum(st.epochs for st in stages) * steps, self.log)  # rate and ETA in the log only
        for stage_no, stage in enumerate(stages):
            if stage.enter is not None:
                stage.enter()
            in_stage = {id(p) for g in stage.groups for p in g["params"]}
            for p in trained.values():
                p.requires_grad_(id(p) in in_stage)
            seed_params = seed_axis_parameters(p for g in stage.groups for p in g["params"])
            other_params = [p for g in stage.groups for p in g["params"] if not has_seed_axis(p)]
            optimizer = torch.optim.AdamW(stage.groups, weight_decay=cfg.weight_decay)
            scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer, lr_lambda(getattr(cfg, "lr_schedule", "constant"), getattr(cfg, "warmup", 0.0),
                                     stage.epochs * steps, getattr(cfg, "warmup_steps", 0)))
            stage_best = [(float("-inf"), 0, None)] * n  # (dev, epoch, state) within this stage
            first_epoch = epoch + 1
            for _ in range(stage.epochs):
                epoch += 1
                # MPMP tunes with the backbone in eval mode (no dropout); train_mode turns it on.
                self.model.train(cfg.train_mode)
                perms = []
                for s in range(n):
                    idx = list(range(n_train))
                    orders[s].shuffle(idx)  # every seed's stream advances, active or not
                    perms.append(idx)
                epoch_loss = torch.zeros(n)
                for step in range(steps):
                    if not active:
                        break
                    items, owners = [], []
                    for s in active:
                        for j in perms[s][step * batch_size:(step + 1) * batch_size]:
                            items.append(self.data[s].train[j])
                            owners.append(s)
                    seed_loss = self._seed_losses(items, owners)
                    values = seed_loss.detach().cpu().tolist()
                    for s in list(active):
                        if first_loss[s] is None:
                            first_loss[s] = values[s]
                        reason = self._diverged(values[s], first_loss[s])
                        if reason:  # this seed stops; the others go on
                            outcomes[s].status, outcomes[s].error = "failed", f"diverged at epoch {epoch}: {reason}"
                            active.remove(s)
                            self.log(f"seed {self.data[s].seed}: {outcomes[s].error}")
                    if not active:
                        break
                    step_active_seeds(optimizer, scheduler, seed_loss, active, seed_params, other_params,
                                      cfg.grad_clip)
                    epoch_loss += torch.tensor([v if k in active else 0.0 for k, v in enumerate(values)])
                    meter.tick((epoch - 1) * steps + step + 1)
                for s in active:
                    outcomes[s].loss_curve.append(round(float(epoch_loss[s]) / steps, 5))
                last_of_stage = epoch == first_epoch + stage.epochs - 1
                if stage.selects and active and (epoch % cfg.eval_every == 0 or last_of_stage):
                    dev_preds = self._evaluate("dev", active)
                    for s in active:
                        dev = self._score(self.data[s].dev, dev_preds[s])[cfg.select_metric or self.task.metric]
                        outcomes[s].dev_curve.append([epoch, round(dev, 5)])
                        if dev > outcomes[s].best_dev:
                            outcomes[s].best_dev, outcomes[s].best_epoch = dev, epoch
                            best_state[s] = self._snapshot(s)
                        if dev > stage_best[s][0]:
                            stage_best[s] = (dev, epoch, self._snapshot(s))
                    self.log(f"epoch {epoch} ({stage.name}): loss " + " ".join(
                        f"{float(epoch_loss[s]) / steps:.3f}" for s in active) + " | dev " + " ".join(
                        f"{outcomes[s].dev_curve[-1][1]:.3f}" for s in active) + f" | {meter.text(epoch * steps)}")
            last = stage_no == len(stages) - 1
            left = stage.leave(list(active)) if stage.leave is not None and active else {}
            for s in range(n):
                record = {"name": stage.name, "epochs": [first_epoch, epoch], **left.get(s, {})}
                if s in active and stage_best[s][2] is not None:
                    record.update(best_epoch=stage_best[s][1], best_dev=round(stage_best[s][0], 5))
                outcomes[s].stages.append(record)
            if not last and len(stages) > 1 and active and stage.selects:
                # the test score of this stage's best checkpoint: what stopping here would give
                self._test_snapshots(active, {s: stage_best[s][2] for s in active},
                                     lambda s, m: outcomes[s].stages[-1].__setitem__("test_metrics", m))
        if not getattr(cfg, "select_on_dev", True):  # the last checkpoint is the tested one
            best_state = [None] * n
        self._test_snapshots(active, {s: best_state[s] for s in active},
                             lambda s, m: setattr(outcomes[s], "test_metrics", m),
                             lambda s, d: setattr(outcomes[s], "test_details", d),
                             lambda s, t: setattr(outcomes[s], "inference_tensors", t))
        return outcomes

    def _seed_losses(self, items: List, owners: List[int]) -> torch.Tensor:
        """Each seed's mean loss over its examples of this step, as one graph. Without dropout
        the step runs as forward passes of similar length (``batching.padding_chunks``): the
        same examples, the same loss up to round-off, fewer padded positions. With dropout
        on it runs as one pass, so that its masks are drawn as before."""
        n = self.n
        chunks = [list(range(len(items)))] if self.model.training else padding_chunks(items, self.call_overhead)
        per_seed = torch.zeros(n, device=self.device)
        for idx in chunks:
            batch = self.formulation.collate([items[i] for i in idx], [owners[i] for i in idx], self.pad_id,
                                             self.device)
            with autocast(self.cfg.precision, self.device):
                losses = self.formulation.example_losses(self.model, batch).float()
            per_seed = per_seed.index_add(0, batch.seed_index, losses)
        counts = torch.bincount(torch.tensor(owners), minlength=n).clamp(min=1).to(self.device)
        return per_seed / counts

    def _test_snapshots(self, seeds: List[int], states: Dict[int, Optional[Dict[str, torch.Tensor]]],
                        record: Callable[[int, Dict[str, float]], None],
                        record_details: Optional[Callable[[int, Dict], None]] = None,
                        record_tensors: Optional[Callable[[int, Dict[str, torch.Tensor]], None]] = None) -> None:
        """Test each seed's parameters in ``states`` (None: the current ones), restoring the
        current parameters afterwards; ``record_details`` takes the formulation's details,
        ``record_tensors`` the tested parameters' ``_inference_tensors``."""
        if not seeds:
            return
        current = {s: self._snapshot(s) for s in seeds}
        for s in seeds:
            self._restore(s, states[s])
        if record_tensors is not None:
            for s, tensors in self._inference_tensors(seeds).items():
                record_tensors(s, tensors)
        test_preds = self._evaluate("test", seeds)
        for s in seeds:
            record(s, self._score(self.data[s].test, test_preds[s]))
            if record_details is not None:
                record_details(s, self.formulation.details(self.encoder, self.data[s].test, test_preds[s]))
            self._restore(s, current[s])

    def _inference_tensors(self, seeds: List[int]) -> Dict[int, Dict[str, torch.Tensor]]:
        """Per seed, what its current parameters add to the frozen backbone when the model's
        prompt is an input prompt (depth 1): "prompt", the (L, d) rows that reach the backbone
        (a prompt encoder's or MPT's decomposition already applied, so nothing of the method is
        needed to use it), and "head", the MRC span head's (d, 2) weight where there is one.
        Empty for every other model (model tuning, deep and black-box prompts): they keep
        nothing an input-prompt file could hold."""
        from .model import SpanHead

        prompt = getattr(self.model, "prompt", None)
        if prompt is None or prompt.depth != 1:
            return {}
        with torch.no_grad():
            rows = prompt()[:, 0]  # (seeds, L, d); a router takes its inference form under no_grad
        head = getattr(self.model, "head", None)
        out = {}
        for s in seeds:  # copies: an input prompt's rows are a view of its parameter, which the caller restores
            tensors = {"prompt": rows[s].detach().to("cpu", torch.float32, copy=True).contiguous()}
            if isinstance(head, SpanHead):
                tensors["head"] = head.weight[s].detach().to("cpu", torch.float32, copy=True).contiguous()
            out[s] = tensors
        return out

    def _trainables(self, s: int) -> Dict[str, torch.Tensor]:
        """Seed ``s``'s view of every parameter some stage trains: its slice of the tensors
        with a seed axis, the whole of the others (they belong to the only seed there is)."""
        params = dict(self.model.named_parameters())
        return {name: params[name][s] if has_seed_axis(params[name]) else params[name] for name in self.trained_names}

    def _snapshot(self, s: int) -> Dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self._trainables(s).items()}

    def _restore(self, s: int, state: Optional[Dict[str, torch.Tensor]]) -> None:
        if state is None:
            return
        with torch.no_grad():
            for k, v in self._trainables(s).items():
                v.copy_(state[k])


def run_group(method, cfg, spec, task, backbone, tokenizer, pristine: Optional[dict], seed_data: List[SeedData],
              encoder, on_done: Callable[[SeedOutcome, float], None], log=print,
              device: Optional[torch.device] = None, init_tokens: Optional[List[int]] = None,
              pretrained: Optional[dict] = None) -> None:
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
            model = method.build(backbone, spec, tokenizer, cfg, [d.seed for d in group],
                                 init_tokens, pretrained).to(device or "cpu")
            outcomes = (method.trainer or GroupTrainer)(model, method, cfg, task, encoder, group, pad, log).fit()
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
    """The outcome as the result's JSON fields (its tensors left out)."""
    d = asdict(o)
    d.pop("inference_tensors")
    if not math.isfinite(d["best_dev"]):
        d["best_dev"] = None
    return d
