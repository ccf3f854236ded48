"""MP2's multi-task pre-training of modular prompts (Sun et al. 2022 §3.3, Appendix A.1): one
DAG node whose checkpoint every downstream MP2 cell of its backbone starts from.

Per prompted layer (the input alone: shallow; every layer: deep), K modular prompts
p_k = A z_k (z: K x intrinsic_dim, A: intrinsic_dim x (length * d), one A per layer) and, per
upstream task and layer, a router over them (``model.RoutedPrompt``, rows = tasks), plus one
MRC head for all tasks; the backbone is frozen. Each step draws a task uniformly at random
and trains on a batch of that task (MP2 §3.3), with one AdamW whose router group and prompt
group (z, A and, unless ``head_lr`` is set, the head: MPMP ``Deep/run.py:87-96``) may have
different learning rates: fast and slow learning (FSL) when they differ.

Data: an upstream task's training pool minus its downstream reserve (``splits.
few_shot_pool``: what few-shot draws may use) minus any example whose text is in the test
pool of any downstream task of its suite; ``dev_fraction`` of what is left, at most ``dev_max``
(a seeded draw; MPMP: 10% of train, or 12,288 where train has 122,880 or more, seed 42,
``Deep/dataloader.py:102-109``; ``dev_size``) is that task's dev slice.
The best checkpoint is the one with the best mean dev score over the tasks (MPMP
``Deep/trainer.py:88-104``); UNSEEN TASK tasks are refused.

The same node pre-trains single prompts (``prompt: single``: one input prompt for all its
tasks, SPoT's multi-task source prompt and PPT's pre-trained prompt; ``per-task``: one per
task, SPoT's retrieval sources and MPT's teachers) with one MRC head, in the tasks' MRC
layout or PPT's MCC layout (``layout``); each step is still one task's batch. And MPT's
source training (``prompt: mpt``, Wang et al. 2023 §3.2): decomposed prompts distilled from
the prompts of a ``per-task`` run (``teachers``; ``replicate.distill``), with K tasks per
batch (``task_sampling``), in MP2's MRC formulation or T5's text to text (``formulation``):
the loop calls only the formulation's ``collate``, ``example_losses``, ``outputs`` and
``predict``/``score``.

Three modules: ``pretrain_config`` (the config, its checks and settings form),
``pretrain_data`` (the data node) and this one (the model and the loop), which re-exports
the other two's names.

Resumable: every ``save_every`` steps the whole state (parameters, optimiser, every random
stream, curves, best so far) is written atomically to ``<out dir>/resume.pt``; a rerun of the
same settings continues from it and ends with the same checkpoint as an uninterrupted run.
"""

from __future__ import annotations

import math
import os
import random
import statistics
import time
from collections import OrderedDict
from dataclasses import replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from .errors import ConfigError, DataError
from .io import load_torch, save_torch_atomic
from .logs import Progress
# The config and the data live in their own modules; their names stay importable from here.
from .pretrain_config import (  # noqa: F401
    DISTILL_KINDS, INPUT_KINDS, OMITTED_WHEN_DEFAULT, OMITTED_WHEN_NULL, PROMPT_KINDS, SINGLE_KINDS, TASK_SAMPLINGS,
    UV_INITS, PretrainConfig, asdict_config, check_teachers, check_upstream_tasks, make_pretrain_config)
from .pretrain_data import (  # noqa: F401
    DATA_FIELDS, DATA_FILE, DATA_MANIFEST, HeldOut, build_data, data_settings_of, dev_size, held_out_texts,
    read_data, upstream_data, upstream_pools, write_data)

# ---------------------------------------------------------------------------------------
# model


def n_prompted_layers(cfg: PretrainConfig, spec) -> int:
    return spec.n_layers if cfg.prompt == "deep" else 1


def build_model(backbone, spec, cfg: PretrainConfig, init_tokens: Optional[Sequence[int]] = None,
                teacher_head: Optional[torch.Tensor] = None):
    """The model a pre-training trains: modular (``build_modular_model``), one prompt, one
    per task, or MPT's decomposed prompts; on MRC with one span head for every task (from
    ``teacher_head``, the teachers', when they teach), on seq2seq with T5's own LM head."""
    if cfg.prompt not in INPUT_KINDS:
        return build_modular_model(backbone, spec, cfg)
    from .methods.common import HEAD_INIT_STD, init_prompt, seed_generator
    from .methods.base import PromptConfig
    from .model import DecomposedPrompt, InputPrompt, PromptedMRC, PromptedSeq2Seq, SharedSpanHead

    purposes = ["pretrain-prompt"] if cfg.prompt != "per-task" else [f"pretrain-prompt:{t}" for t in cfg.tasks]
    init = torch.stack([init_prompt(backbone, PromptConfig(init="vocab"), cfg.seed, cfg.prompt_length, purpose,
                                    init_tokens) for purpose in purposes])
    if cfg.prompt == "mpt":
        n, d = len(cfg.tasks), init.shape[-1]
        if cfg.uv_init == "ones":
            u, v = torch.ones(n, cfg.prompt_length), torch.ones(n, d)
        else:
            g = seed_generator(cfg.seed, "pretrain-uv")
            u = torch.randn(n, cfg.prompt_length, generator=g) * cfg.uv_init_std
            v = torch.randn(n, d, generator=g) * cfg.uv_init_std
        prompt = DecomposedPrompt(init, u, v, seed_axis=False)
    else:
        prompt = InputPrompt(init)
    backbone.requires_grad_(False)
    if cfg.formulation == "seq2seq":
        return PromptedSeq2Seq(backbone, prompt)
    head = torch.randn(spec.d_model, 2, generator=seed_generator(cfg.seed, "pretrain-head")) * HEAD_INIT_STD
    if teacher_head is not None:
        head = teacher_head.float().clone()
    return PromptedMRC(backbone, spec, SharedSpanHead(head), prompt)


def build_teacher(backbone, spec, cfg: PretrainConfig, teachers: Mapping[str, Any]):
    """The teachers as one frozen model over the same backbone: row i is the prompt of
    ``teachers["tasks"][i]`` (on MRC with the teachers' head)."""
    from .model import InputPrompt, PromptedMRC, PromptedSeq2Seq, SharedSpanHead

    prompts = InputPrompt(teachers["prompts"].float())
    prompts.weight.requires_grad_(False)
    if cfg.formulation == "seq2seq":
        return PromptedSeq2Seq(backbone, prompts)
    head = SharedSpanHead(teachers["head"].float())
    head.weight.requires_grad_(False)
    return PromptedMRC(backbone, spec, head, prompts)


def build_modular_model(backbone, spec, cfg: PretrainConfig):
    """Backbone + routers (one row per task) over K intrinsic modular prompts + one MRC head,
    initialised as MPMP (``Deep/modeling_bert.py:549-566``): routers and z from U(-1e-3, 1e-3),
    A from U(-1/sqrt(length * d), +1/sqrt(length * d)); the head as CPT's init (std 0.02)."""
    from .methods.common import HEAD_INIT_STD, seed_generator
    from .model import IntrinsicPromptBank, PromptedMRC, RoutedPrompt, SharedSpanHead

    depth, k, d = n_prompted_layers(cfg, spec), cfg.n_prompts, spec.d_model
    flat = cfg.prompt_length * d
    g = seed_generator(cfg.seed, "pretrain-init")
    router = (torch.rand(len(cfg.tasks), depth, k, generator=g) * 2 - 1) * 1e-3
    z = (torch.rand(depth, k, cfg.intrinsic_dim, generator=g) * 2 - 1) * 1e-3
    bound = 1 / math.sqrt(flat)
    A = (torch.rand(depth, cfg.intrinsic_dim, flat, generator=g) * 2 - 1) * bound
    head = torch.randn(d, 2, generator=g) * HEAD_INIT_STD
    prompt = RoutedPrompt(router, IntrinsicPromptBank(z, A, cfg.prompt_length, d), cfg.combine, cfg.temperature,
                          sample=True, generators=[seed_generator(cfg.seed, f"router-noise:{t}") for t in cfg.tasks],
                          router_has_seed_axis=False)
    backbone.requires_grad_(False)
    return PromptedMRC(backbone, spec, SharedSpanHead(head), prompt)


def _trained(model) -> List[Tuple[torch.nn.Parameter, str]]:
    """The trained tensors and their checkpoint keys."""
    p = model.prompt
    if hasattr(p, "router"):
        out = [(p.router, "router"), (p.bank.z, "z"), (p.bank.A, "A")]
    elif hasattr(p, "shared"):  # MPT's decomposed prompts
        out = [(p.shared, "shared"), (p.u, "u"), (p.v, "v")]
    else:
        out = [(p.weight, "prompt_tensor")]
    if getattr(model, "head", None) is not None:
        out.append((model.head.weight, "head"))
    return out


def _state_tensors(model) -> Dict[str, torch.Tensor]:
    return {key: param.detach().clone() for param, key in _trained(model)}


def _load_tensors(model, state: Mapping[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for param, key in _trained(model):
            param.copy_(state[key])


# ---------------------------------------------------------------------------------------
# the loop


def param_groups(model, cfg: PretrainConfig) -> List[Dict[str, Any]]:
    """The AdamW parameter groups: the routers at ``router_lr``; z and A (or the single
    prompts, or MPT's P*, u and v: MPT App. A trains both at one rate in source training)
    at ``prompt_lr``; the head, where there is one, at ``head_lr``, or ``prompt_lr`` when
    that is null (MPMP ``Deep/run.py:87-96``). Fast and slow learning is router_lr !=
    prompt_lr."""
    prompt = model.prompt
    if hasattr(prompt, "router"):
        groups = [{"params": [prompt.router], "lr": cfg.router_lr},
                  {"params": [prompt.bank.z, prompt.bank.A], "lr": cfg.prompt_lr}]
    elif hasattr(prompt, "shared"):
        groups = [{"params": [prompt.shared, prompt.u, prompt.v], "lr": cfg.prompt_lr}]
    else:
        groups = [{"params": [prompt.weight], "lr": cfg.prompt_lr}]
    if getattr(model, "head", None) is not None:
        groups.append({"params": [model.head.weight], "lr": cfg.prompt_lr if cfg.head_lr is None else cfg.head_lr})
    return groups


class TaskSampler:
    """The upstream tasks of each step, as (task row, examples) pairs
    (``PretrainConfig.task_sampling``), from a generator keyed by the seed.

    "one": one task, uniform at random and independent of the steps before (MP2 3.3; MPMP
    draws a random index of an endless dataset whose index modulo the number of tasks is
    the task, ``Deep/dataloader.py:9,53-54``). "one-proportional": one task, drawn in
    proportion to the tasks' training examples. "stochastic": MPT §3.2's stochastic task
    sampling: K uniform in [2, κ], K tasks drawn without replacement with probabilities
    proportional to their training examples (examples-proportional mixing, MPT §4.1), the
    batch split evenly (the first tasks drawn take the remainder). "proportional": each
    example's task drawn in proportion to the tasks' training examples."""

    def __init__(self, n_tasks: int, seed: int, how: str = "one", sizes: Sequence[int] = (), batch_size: int = 1,
                 max_tasks: Optional[int] = None):
        self.n, self.how, self.sizes, self.batch_size = n_tasks, how, list(sizes), batch_size
        self.max_tasks = min(max_tasks or n_tasks, n_tasks, batch_size)
        self.rng = random.Random(f"pretrain-tasks|{seed}")

    def next(self) -> List[Tuple[int, int]]:
        if self.how == "one":
            return [(self.rng.randrange(self.n), self.batch_size)]
        if self.how == "one-proportional":
            return [(self.rng.choices(range(self.n), weights=self.sizes)[0], self.batch_size)]
        if self.how == "proportional":
            rows = self.rng.choices(range(self.n), weights=self.sizes, k=self.batch_size)
            return [(r, rows.count(r)) for r in sorted(set(rows))]
        k = self.rng.randint(min(2, self.max_tasks), self.max_tasks)
        left, chosen = list(range(self.n)), []
        for _ in range(k):
            pick = self.rng.choices(left, weights=[self.sizes[r] for r in left])[0]
            left.remove(pick)
            chosen.append(pick)
        base, extra = divmod(self.batch_size, k)
        return [(r, base + (i < extra)) for i, r in enumerate(chosen)]

    def getstate(self):
        return self.rng.getstate()

    def setstate(self, state) -> None:
        self.rng.setstate(state)


# Encodings held at most by a pre-training (``EncodingCache``). MPMP's 38 tasks hold about
# 10M training examples, so memoising every encoding seen grows for the whole run: ~27 KiB
# per 512-token encoding (bench/pretrain_memory.py), hundreds of GB; this bound is ~0.5 GB
# at 512 tokens and holds every example of the embedded default (13 tasks x at most
# 500 + 24), so there it never re-encodes.
ENCODING_CACHE = 16_384


class EncodingCache:
    """Encodings by key, least recently used first out once more than ``limit`` are held
    (None: no limit). Encoding is deterministic, so the limit changes nothing but memory and
    time. ``peak``: the most held at once."""

    def __init__(self, limit: Optional[int]):
        if limit is not None and limit < 1:
            raise ValueError(f"cache limit must be at least 1 or None, not {limit}")
        self.limit = limit
        self.items: "OrderedDict[Any, Any]" = OrderedDict()
        self.hits = self.misses = self.peak = 0

    def get(self, key, make):
        value = self.items.get(key)
        if value is not None:
            self.hits += 1
            self.items.move_to_end(key)
            return value
        self.misses += 1
        value = self.items[key] = make()
        if self.limit is not None and len(self.items) > self.limit:
            self.items.popitem(last=False)
        self.peak = max(self.peak, len(self.items))
        return value

    def __len__(self) -> int:
        return len(self.items)

    def stats(self) -> Dict[str, Optional[int]]:
        return {"limit": self.limit, "peak": self.peak, "hits": self.hits, "misses": self.misses}


class _Stream:
    """Endless batches of one task's training examples: a seeded shuffle per pass."""

    def __init__(self, n: int, key: str):
        self.n, self.rng, self.order, self.cursor = n, random.Random(key), [], 0

    def take(self, k: int) -> List[int]:
        out = []
        while len(out) < k:
            if self.cursor >= len(self.order):
                self.order = list(range(self.n))
                self.rng.shuffle(self.order)
                self.cursor = 0
            take = min(k - len(out), len(self.order) - self.cursor)
            out += self.order[self.cursor:self.cursor + take]
            self.cursor += take
        return out

    def state(self):
        return {"rng": self.rng.getstate(), "order": self.order, "cursor": self.cursor}

    def load(self, st) -> None:
        self.rng.setstate(st["rng"])
        self.order, self.cursor = list(st["order"]), st["cursor"]


def fitting_data(tasks, encoders, data, log=print) -> Dict[str, Tuple[list, list]]:
    """``data`` without the draws of lettered tasks (``formats.LetteredTemplate``) that do not
    fit their encoder (``mrc.TooLong``: candidates that leave no room for the query at this
    max_length, or a cut answer that reads as another candidate), with a logged count. The
    encodings are not kept: the loop's bounded cache (``EncodingCache``) makes them again."""
    out = dict(data)
    for task, encoder in zip(tasks, encoders):
        if not hasattr(task.template, "letters"):  # other layouts never cut an option: encoded lazily
            continue
        parts = []
        for part, examples in zip(("train", "dev"), data[task.name]):
            kept = encoder.fitting(examples)
            if len(kept) < len(examples):
                log(f"{task.name}: dropped {len(examples) - len(kept)} of {len(examples)} {part} examples whose "
                    f"candidates do not fit max_length {encoder.max_length}")
            if not kept:
                raise ConfigError(f"pre-training task {task.name}: none of its {part} examples fits max_length "
                                  f"{encoder.max_length}")
            parts.append(kept)
        out[task.name] = tuple(parts)
    return out


def constant_score(task, dev: Sequence) -> Optional[float]:
    """The task's metric on its dev slice for the best constant prediction (one label, or one
    option position, for every example): a dev score at or below it says the pre-training has
    not learned the task, whatever the mean over tasks says. None for extractive tasks (no
    constant answer)."""
    from .metrics import score

    if task.kind == "extractive":
        return None
    golds = [ex.label for ex in dev]
    return round(max(score(task, [g] * len(golds), golds)[task.metric] for g in set(golds)), 4)


def pretrain_formulation(cfg: PretrainConfig, task):
    """The formulation a pre-training lays ``task`` out in (``PretrainConfig.formulation``)."""
    from .formulation import formulation

    return formulation(cfg.formulation, task, cfg)


def read_resume_state(path: str, log=print) -> Optional[dict]:
    """The resume state at ``path``; None when there is none, or when it cannot be read
    (damaged after it was written: a copy cut short, a filesystem fault): then a logged
    warning, and the run starts afresh, as it would without it, instead of stopping."""
    if not os.path.exists(path):
        return None
    try:
        return load_torch(path, "resume state", "starting afresh", weights_only=False)
    except DataError as e:
        log(f"warning: {e}")
        return None


def run_pretraining(cfg: PretrainConfig, spec, backbone, tokenizer, tasks: Sequence, data: Dict[str, Tuple[list, list]],
                    resume_path: Optional[str], settings_hash: str, log=print, device=None,
                    stop_after: Optional[int] = None, cache_limit: Optional[int] = ENCODING_CACHE,
                    teachers: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Pre-train; return {"state": best tensors, "best_step", "best_dev", "dev_curve",
    "loss_curve", "steps_run", "task_steps": steps in which each task had examples (None
    after resuming a file that did not count them), "encoding_cache": its ``stats``,
    "resumed_at_step": the step of the resume state it continued from (None: from step 0),
    "dev_constant": {task: ``constant_score`` of its dev slice}}.
    ``stop_after``: return after that many steps (a simulated kill: the resume checkpoint is
    what survives). ``cache_limit``: encodings held at most (``EncodingCache``; None: every
    one seen, O(examples seen) memory); it changes the memory and time, never the result.
    ``teachers``: {"tasks", "prompts" (n, L, d), "head" (MRC)} when ``cfg.distill`` is set."""
    from .batching import call_overhead_positions, padding_chunks
    from .distill import hidden_mse, logits_kl, prompt_distance
    from .formats import in_format
    from .methods.common import frequent_tokens
    from .metrics import above_constant
    from .train import autocast, lr_lambda, predict_rows

    device = device or torch.device("cpu")
    tasks = [in_format(t, cfg.layout) for t in tasks]
    formulations = [pretrain_formulation(cfg, t) for t in tasks]
    encoders = [f.encoder(tokenizer, cfg.max_length, cfg.prompt_length, spec) for f in formulations]
    init_tokens = None
    if cfg.prompt in INPUT_KINDS:  # from the upstream training texts only
        source = ((lambda i, ex: encoders[i].source_text(ex)) if cfg.formulation == "seq2seq" else
                  (lambda i, ex: tasks[i].template.fill(ex)[0]))
        init_tokens = frequent_tokens(tokenizer, (source(i, ex) for i, t in enumerate(tasks)
                                                  for ex in data[t.name][0]), cfg.init_vocab_size)
    if cfg.distill != "none" and teachers is None:
        raise ConfigError(f"distill {cfg.distill!r}: the run needs its teachers' prompts")
    teacher, teacher_row = None, []
    if teachers is not None:  # checked before any model hooks into the (caller's) backbone
        missing = [t.name for t in tasks if t.name not in teachers["tasks"]]
        if missing:
            raise ConfigError(f"the teachers have no prompt for {', '.join(missing)}")
        teacher_row = [list(teachers["tasks"]).index(t.name) for t in tasks]
        if tuple(teachers["prompts"].shape[1:]) != (cfg.prompt_length, spec.d_model):
            raise ConfigError(f"the teachers' prompts are {tuple(teachers['prompts'].shape[1:])} (length, d); this "
                              f"run needs ({cfg.prompt_length}, {spec.d_model})")
    teacher_head = teachers.get("head") if teachers is not None else None
    model = build_model(backbone, spec, cfg, init_tokens, teacher_head).to(device)
    try:
        if teachers is not None:
            teacher = build_teacher(backbone, spec, cfg, teachers).to(device)
        # the prompt row of a task's examples: its router's or its own prompt's, or the one shared prompt's
        row_of = (lambda row: 0) if cfg.prompt == "single" else (lambda row: row)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        cache = EncodingCache(cache_limit)
        data = fitting_data(tasks, encoders, data, log)

        def encoded(row: int, part: str, ex):
            return cache.get((row, part, ex.id), lambda: encoders[row].encode(ex))

        prompt = model.prompt
        optimizer = torch.optim.AdamW(param_groups(model, cfg), weight_decay=cfg.weight_decay)
        base_lrs = [g["lr"] for g in optimizer.param_groups]  # before a resume state sets the scheduled ones
        noise = getattr(prompt, "generators", [])
        sampler = TaskSampler(len(tasks), cfg.seed, cfg.task_sampling, [len(data[t.name][0]) for t in tasks],
                              cfg.batch_size, cfg.max_tasks_per_batch)
        streams = [_Stream(len(data[t.name][0]), f"pretrain-batches|{cfg.seed}|{t.name}") for t in tasks]
        torch.manual_seed(cfg.seed)  # dropout
        progress = {"step": 0, "best_dev": float("-inf"), "best_step": 0, "best_state": None, "dev_curve": [],
                    "loss_curve": [], "task_steps": [0] * len(tasks)}
        window: List[float] = []
        resumed_at = None
        saved = read_resume_state(resume_path, log) if resume_path else None
        if saved is not None:
            if saved.get("settings_hash") == settings_hash:
                _load_tensors(model, saved["params"])
                optimizer.load_state_dict(saved["optimizer"])
                sampler.setstate(saved["sampler"])
                for s, st in zip(streams, saved["streams"]):
                    s.load(st)
                for g, st in zip(noise, saved["noise"]):
                    g.set_state(st)
                torch.set_rng_state(saved["torch_rng"])
                # a resume file written before steps were counted per task: those counts are unknown
                progress = {"task_steps": None, **saved["progress"]}
                window[:] = saved.get("window", [])  # the losses since the last dev check
                resumed_at = progress["step"]
                log(f"resumed from {resume_path} at step {progress['step']}")
            else:
                log(f"{resume_path} belongs to other settings: starting afresh")

        constant = {t.name: constant_score(t, data[t.name][1]) for t in tasks}

        def evaluate(step: int) -> None:
            model.eval()
            scores = {}
            for row, task in enumerate(tasks):
                encs = [encoded(row, "dev", ex) for ex in data[task.name][1]]
                preds = predict_rows(formulations[row], model, [(row_of(row), e) for e in encs], pad, device,
                                     cfg.eval_batch_size, cfg.precision, final=False)
                scores[task.name] = round(formulations[row].score(encoders[row], encs, preds)[task.metric], 4)
            mean = statistics.fmean(scores.values())
            progress["dev_curve"].append({"step": step, "mean": round(mean, 4), "tasks": scores})
            if mean > progress["best_dev"]:
                progress.update(best_dev=mean, best_step=step, best_state=_state_tensors(model))
            above, n_ref = above_constant(scores, constant)
            log(f"step {step}/{cfg.steps}: mean dev {mean:.2f} (best {progress['best_dev']:.2f} at step "
                f"{progress['best_step']}); above a constant prediction on {len(above)} of {n_ref} tasks"
                + (f" ({', '.join(above)})" if above else "") + f" | {meter.text(step)}")

        def batch_kind(row: int):
            """Tasks whose examples one forward pass can take together: the same formulation
            and, on MRC, the same answer kind (a span, or one of the options)."""
            return type(formulations[row]).__name__, getattr(formulations[row], "extractive", None)

        def example_losses(rows: List[int], batch) -> torch.Tensor:
            """(B,) the training loss of each example of a batch of one kind (``rows``: each
            example's task): its task loss, plus λ times its distillation loss (``cfg.distill``)."""
            f = formulations[rows[0]]
            if cfg.distill in ("none", "prompt-distance"):
                losses = f.example_losses(model, batch).float()
                if cfg.distill == "prompt-distance":
                    student = model.prompt()[:, 0]
                    distance = {r: prompt_distance(student[row_of(r)], teacher.prompt.weight[teacher_row[r]])
                                for r in set(rows)}
                    losses = losses + cfg.distill_lambda * torch.stack([distance[r] for r in rows])
                return losses
            teacher.eval()  # the teachers run without dropout; the student as configured
            with torch.no_grad():
                taught_index = torch.tensor([teacher_row[r] for r in rows], dtype=torch.long,
                                            device=batch.seed_index.device)
                taught = f.outputs(teacher, replace(batch, seed_index=taught_index))
            model.train(cfg.train_mode)
            out = f.outputs(model, batch)
            distill = logits_kl(out, taught, cfg.distill_temperature)
            if cfg.distill == "logits-hidden":
                distill = distill + hidden_mse(out, taught)
            return out.losses.float() + cfg.distill_lambda * distill

        # the schedule's factor is a function of the step alone, so a resumed run follows it as is
        schedule = lr_lambda(cfg.lr_schedule, 0.0, cfg.steps, cfg.warmup_steps)
        start = time.perf_counter()
        meter = Progress(cfg.steps, log, done=progress["step"])  # rate and ETA in the log; logging only
        call_overhead = call_overhead_positions(model)
        while progress["step"] < cfg.steps:
            step = progress["step"] + 1
            for group, base in zip(optimizer.param_groups, base_lrs):
                group["lr"] = base * schedule(step - 1)
            plan = sampler.next()
            if progress["task_steps"] is not None:
                for row, _ in plan:
                    progress["task_steps"][row] += 1
            model.train(cfg.train_mode)
            total = torch.zeros((), device=device)
            kinds: Dict[Any, Tuple[list, list]] = {}  # one forward pass per kind of task in the step
            for row, count in plan:
                train = data[tasks[row].name][0]
                items, rows = kinds.setdefault(batch_kind(row), ([], []))
                items += [encoded(row, "train", train[j]) for j in streams[row].take(count)]
                rows += [row] * count
            for items, rows in kinds.values():
                # without dropout, passes of similar length (the same sum up to round-off; train.py)
                for idx in [range(len(items))] if model.training else padding_chunks(items, call_overhead):
                    batch = formulations[rows[0]].collate([items[i] for i in idx], [row_of(rows[i]) for i in idx],
                                                          pad, device)
                    with autocast(cfg.precision, device):
                        total = total + example_losses([rows[i] for i in idx], batch).sum()
            loss = total / sum(count for _, count in plan)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            window.append(float(loss.detach()))
            progress["step"] = step
            if step % cfg.eval_every == 0 or step == cfg.steps:
                progress["loss_curve"].append([step, round(statistics.fmean(window), 5)])
                window = []
                evaluate(step)
            if resume_path and (step % cfg.save_every == 0 or step == cfg.steps):
                save_torch_atomic({"settings_hash": settings_hash, "params": _state_tensors(model),
                              "optimizer": optimizer.state_dict(), "sampler": sampler.getstate(),
                              "streams": [s.state() for s in streams], "noise": [g.get_state() for g in noise],
                              "torch_rng": torch.get_rng_state(), "progress": progress, "window": window}, resume_path)
            meter.tick(step)
            if stop_after is not None and step >= stop_after:
                break
    finally:
        for hook in model._hooks + (teacher._hooks if teacher is not None else []):
            hook.remove()  # the backbone may be used again in the same process (also after an error)
    log(f"{progress['step']} steps in {time.perf_counter() - start:.1f}s")
    return {"state": progress["best_state"], "best_step": progress["best_step"], "best_dev": progress["best_dev"],
            "dev_curve": progress["dev_curve"], "loss_curve": progress["loss_curve"], "steps_run": progress["step"],
            "task_steps": progress["task_steps"], "encoding_cache": cache.stats(), "resumed_at_step": resumed_at,
            "dev_constant": constant}


def checkpoint_tensors(raw: Mapping[str, Any]) -> Dict[str, Any]:
    """What downstream methods read from a checkpoint: the modular prompts as one tensor
    (layers, K, length, d) = z A, the head, and the pre-training routers; or, for a single
    prompt, that prompt (length, d) and the head."""
    if raw.get("prompt") == "single":
        return {"prompt": raw["prompt_tensor"].float()[0], "head": raw.get("head"), "tasks": raw["tasks"],
                "layout": raw.get("layout", "options")}
    if raw.get("prompt") == "per-task":
        return {"source_prompts": raw["prompt_tensor"].float(), "head": raw.get("head"), "tasks": raw["tasks"],
                "layout": raw.get("layout", "options")}
    if raw.get("prompt") == "mpt":  # P* (L, d), u (tasks, L), v (tasks, d)
        return {"shared": raw["shared"].float()[0], "u": raw["u"].float(), "v": raw["v"].float(),
                "head": raw.get("head"), "tasks": raw["tasks"], "layout": raw.get("layout", "options")}
    z, A = raw["z"], raw["A"]
    depth, k, _ = z.shape
    prompts = torch.bmm(z.float(), A.float()).view(depth, k, raw["prompt_length"], raw["d_model"])
    return {"prompts": prompts, "head": raw["head"], "router": raw["router"], "z": z, "A": A,
            "tasks": raw["tasks"]}
