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
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from .errors import ConfigError
from .methods.base import check_fields

PROMPT_KINDS = ("shallow", "deep", "single", "per-task", "mpt")
SINGLE_KINDS = ("single", "per-task")  # soft prompts at the input, no routers
INPUT_KINDS = SINGLE_KINDS + ("mpt",)  # prompts at the input initialised from the vocabulary
DISTILL_KINDS = ("none", "logits-hidden", "logits", "prompt-distance")
TASK_SAMPLINGS = ("one", "stochastic", "proportional", "one-proportional")
UV_INITS = ("ones", "normal")


@dataclass
class PretrainConfig:
    """One pre-training run (config ``pretraining: <name>: {...}``). Defaults: MP2 Appendix
    A.1 and MPMP ``Deep/run.py`` (deep MP2 with FSL).

    prompt: "shallow" (modular prompts at the input), "deep" (at every layer), or "single":
        one soft prompt at the input shared by every task, no routers (SPoT's multi-task
        source prompt, Vu et al. 2022; PPT's pre-trained prompt, Gu et al. 2022); its
        initialisation is Lester et al.'s sampled vocabulary (``init_vocab_size`` most
        frequent tokens of the upstream training texts); or "per-task": one such prompt per
        upstream task (SPoT's source prompts for retrieval), with one head for all.
    layout: how the tasks are laid out (``formats.LAYOUTS``): "options" (MRC, MP2) or "mcc"
        (PPT's multiple choice with option letters; Unified PPT).
    tasks: the upstream tasks, in router-row order (MP2: the 38 of Appendix D).
    prompt_length: soft tokens per modular prompt (MP2: 50).
    n_prompts: modular prompts per layer, K (MP2: 8).
    intrinsic_dim: the dimension of z_k (MPMP ``run.py:13``: 300).
    steps: optimiser steps (MP2 A.1: 1M).
    batch_size: examples per step, all of one task (MP2 A.1: 32).
    router_lr: learning rate of the routers (deep MP2, FSL: 5e-4; shallow, no FSL: 1e-3).
    prompt_lr: learning rate of z and A (deep: 1e-4; shallow: 1e-3).
    head_lr: learning rate of the MRC head; null: prompt_lr (MPMP puts the head in the
        prompts' optimiser, ``Deep/run.py:87-96``).
    weight_decay: AdamW's (MPMP: the default, 0.01).
    combine, temperature: the routers' form (``model.RoutedPrompt``): "mpmp", MPMP's sigmoid
        / sum (``Deep/modeling_bert.py:587-592``; temperature 1.0), or "paper", MP2 eq 1's
        binary router / K; every downstream MP2 method of the checkpoint must use the same
        (checked at config time). Pre-training always samples the relaxed Bernoulli (the
        model is in train mode, MPMP ``Deep/trainer.py:115``).
    train_mode: dropout in the backbone while pre-training (MPMP: on).
    dev_fraction: share of each task's upstream data held out as its dev slice (MPMP: 0.1).
    dev_max: at most this many dev examples per task, the rest of the task's data trains
        (MPMP: 12,288). MPMP holds out ``test_size = .1 if len(train) < 122880 else 12288``
        through HF ``train_test_split``, which rounds a fractional test size up
        (``Deep/dataloader.py:104,108``); that is ``min(ceil(0.1 n), 12288)``, since its
        threshold 122,880 is 12,288 / 0.1. With dev_max set the slice is that:
        ``min(ceil(dev_fraction n), dev_max)``; null: ``round(dev_fraction n)`` (the rule
        the embedded default's data were built with; null is left out of the settings, so
        their hash is unchanged).
    dev_cap: at most this many dev examples per task (null: all); unlike ``dev_max`` the
        examples it cuts from the dev slice are not trained on (a cheaper evaluation).
    train_cap: at most this many training examples per task, the first of a seeded
        shuffle (null: all).
    eval_every: steps between dev evaluations (MPMP ``run.py:18``: 50,000); the last step
        is always evaluated.
    save_every: steps between resume checkpoints (MPMP ``run.py:14``: 10,000).
    max_length: tokens per example, prompt slots included (MPMP: 512).
    seed: seeds task sampling, batches, dev slices, dropout and the initialisation (MPMP: 42).
    precision: "fp32" or "bf16" (autocast of the backbone).
    eval_batch_size: examples per forward pass when evaluating.

    MPT's source training (Wang et al. 2023 §3.2; docs/methods/mpt.md). ``prompt: mpt`` is the
    decomposed prompt (``model.DecomposedPrompt``): a shared P* (vocabulary init, as
    ``single``) and per task u_k, v_k; task k's prompt is P* ∘ (u_k v_kᵀ).
    formulation: "mrc" (MP2's span format, one shared head) or "seq2seq" (T5 text to text,
        no head; with text_format, prompt_position, max_target_length and reader, the
        fields of the same name of ``methods.base.TrainConfig``: every downstream method
        of the checkpoint must use the same, checked at config time).
    teachers: a ``per-task`` pre-training whose prompts teach this run's tasks (each task
        its own prompt; on MRC the student's head starts from the teachers'); its settings
        hash is part of this run's settings, its checkpoint's sha256 of the summary.
    teacher_files: task -> a released prompt file (a (L, d) tensor saved by torch, as
        ATTEMPT publishes its source prompts), instead of ``teachers`` (seq2seq only: such
        a file has no MRC head); each file's sha256 is part of the settings.
    distill: "none", "logits-hidden" (MPT eq 5: L_PLM + λ (L_logits + L_hidden)), "logits"
        (§4.3: without the hidden-state loss) or "prompt-distance" (§4.3: L_PLM + λ times the
        mean squared distance of the student's task prompt to its teacher's).
    distill_lambda: λ (MPT: 0.9). distill_temperature: T of eq 3 (MPT gives no value; 1.0).
    task_sampling: how a step's batch is drawn: "one" (MP2: one task, uniform), "stochastic"
        (MPT: K uniform in [2, κ], then K tasks without replacement with probabilities
        proportional to their training examples, the batch split evenly between them) or
        "proportional" (every example's task drawn in proportion to the tasks' training
        examples: examples-proportional mixing, MPT's ablation without stochastic sampling)
        or "one-proportional" (one task per step, drawn in proportion to its training
        examples: per-task prompts each see their own data for the same number of epochs in
        expectation, at the full batch size: MPT's teachers, each vanilla PT on its task).
    max_tasks_per_batch: κ (null: every task).
    uv_init: u_k and v_k start at "ones" (P* ∘ 1 = P*: the student prompt starts from the
        sampled vocabulary, as MPT App. A initialises it) or "normal": N(0, uv_init_std),
        peft's MPT module (``tuners/multitask_prompt_tuning/model.py:44-57``, std 0.02), where
        the task prompts start near zero.
    lr_schedule, warmup_steps: "constant" (MP2) or "linear" decay to 0 at ``steps``, after a
        linear warm-up of ``warmup_steps`` (transformers' linear schedule, which ATTEMPT's
        prompt tuning runs: MPT's teachers are "conventional prompt tuning").
    """

    prompt: str = "deep"
    layout: str = "options"
    init_vocab_size: int = 5000
    tasks: Tuple[str, ...] = ()
    prompt_length: int = 50
    n_prompts: int = 8
    intrinsic_dim: int = 300
    steps: int = 1_000_000
    batch_size: int = 32
    router_lr: float = 5e-4
    prompt_lr: float = 1e-4
    head_lr: Optional[float] = None
    weight_decay: float = 0.01
    combine: str = "mpmp"
    temperature: float = 1.0
    train_mode: bool = True
    dev_fraction: float = 0.1
    dev_max: Optional[int] = None
    dev_cap: Optional[int] = None
    train_cap: Optional[int] = None
    eval_every: int = 50_000
    save_every: int = 10_000
    max_length: int = 512
    seed: int = 42
    precision: str = "fp32"
    eval_batch_size: int = 64
    formulation: str = "mrc"
    text_format: str = "attempt"
    prompt_position: str = "prefix"
    max_target_length: int = 16
    reader: str = "rank"
    teachers: Optional[str] = None
    teacher_files: Optional[Dict[str, str]] = None
    distill: str = "none"
    distill_lambda: float = 0.9
    distill_temperature: float = 1.0
    task_sampling: str = "one"
    max_tasks_per_batch: Optional[int] = None
    uv_init: str = "ones"
    uv_init_std: float = 0.02
    lr_schedule: str = "constant"
    warmup_steps: int = 0

    @property
    def fsl(self) -> bool:
        """Fast and slow learning: the routers learn at another rate than the prompts."""
        return self.router_lr != self.prompt_lr


def make_pretrain_config(name: str, values: Mapping[str, Any]) -> PretrainConfig:
    """The validated config of pre-training ``name``; ConfigError names the first bad field."""
    from .formats import LAYOUTS
    from .methods.base import coerce
    from .model import ROUTER_COMBINES

    types = {f.name: f.type for f in fields(PretrainConfig)}
    unknown = sorted(set(values) - set(types))
    if unknown:
        raise ConfigError(f"config pretraining/{name}: unknown field(s) {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(types))}")
    out = {}
    for key, value in values.items():
        if key == "tasks":
            if not isinstance(value, (list, tuple)) or not value or not all(isinstance(t, str) for t in value):
                raise ConfigError(f"config pretraining/{name}/tasks: a non-empty list of task names")
            if len(set(value)) != len(value):
                raise ConfigError(f"config pretraining/{name}/tasks: a task is listed twice")
            out[key] = tuple(value)
        elif key == "teacher_files":
            if value is not None and (not isinstance(value, Mapping) or not value
                                      or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())):
                raise ConfigError(f"config pretraining/{name}/teacher_files: a mapping of task names to prompt files")
            out[key] = None if value is None else dict(value)
        else:
            out[key] = coerce(f"pretraining/{name}/{key}", types[key], value)
    cfg = PretrainConfig(**out)
    if not cfg.tasks:
        raise ConfigError(f"config pretraining/{name}/tasks: name the upstream tasks")
    try:
        check_fields(cfg, choices={"prompt": PROMPT_KINDS, "combine": ROUTER_COMBINES, "precision": ("fp32", "bf16"),
                                   "layout": LAYOUTS},
                     at_least_one=("prompt_length", "n_prompts", "intrinsic_dim", "steps", "batch_size", "eval_every",
                                   "save_every", "max_length", "eval_batch_size", "dev_max", "dev_cap", "train_cap",
                                   "init_vocab_size"),
                     positive=("router_lr", "prompt_lr", "head_lr", "temperature"), non_negative=("weight_decay",))
        if not 0 < cfg.dev_fraction < 1:
            raise ConfigError(f"dev_fraction: must be in (0, 1), not {cfg.dev_fraction}")
        _check_mpt_fields(cfg)
    except ConfigError as e:
        raise ConfigError(f"config pretraining/{name}/{e}") from None
    return cfg


def _check_mpt_fields(cfg: PretrainConfig) -> None:
    """The formulation, distillation and task-sampling fields (ConfigError "<field>: ...")."""
    from .methods.base import GRADIENT_FORMULATIONS
    from .seq2seq import PROMPT_POSITIONS, READERS
    from .tasks.base import LINEAGES

    check_fields(cfg, choices={"formulation": GRADIENT_FORMULATIONS, "text_format": LINEAGES,
                               "prompt_position": PROMPT_POSITIONS, "reader": READERS, "distill": DISTILL_KINDS,
                               "task_sampling": TASK_SAMPLINGS, "uv_init": UV_INITS,
                               "lr_schedule": ("constant", "linear")},
                 at_least_one=("max_target_length", "max_tasks_per_batch"),
                 positive=("distill_temperature", "uv_init_std"), non_negative=("distill_lambda", "warmup_steps"))
    if cfg.formulation == "seq2seq" and cfg.prompt not in INPUT_KINDS:
        raise ConfigError(f"prompt: the seq2seq formulation takes input prompts ({', '.join(INPUT_KINDS)}), "
                          f"not {cfg.prompt!r}")
    if cfg.max_tasks_per_batch is not None and cfg.max_tasks_per_batch < 2:
        raise ConfigError(f"max_tasks_per_batch: κ must be >= 2 (MPT draws K from [2, κ]), "
                          f"not {cfg.max_tasks_per_batch}")
    if cfg.teachers is not None and cfg.teacher_files is not None:
        raise ConfigError("teachers: set teachers (a pre-training) or teacher_files (released prompts), not both")
    taught = cfg.teachers is not None or cfg.teacher_files is not None
    if cfg.distill != "none" and not taught:
        raise ConfigError(f"distill: {cfg.distill!r} needs teachers (a per-task pre-training) or teacher_files")
    if taught and cfg.distill == "none":
        raise ConfigError("distill: teachers are set, but distill is 'none' (say which loss they teach with)")
    if cfg.teacher_files is not None and cfg.formulation != "seq2seq":
        raise ConfigError("teacher_files: released prompt files carry no MRC head; they teach the seq2seq formulation")
    if cfg.prompt not in INPUT_KINDS and taught:
        raise ConfigError(f"teachers: distillation trains input prompts ({', '.join(INPUT_KINDS)}), not {cfg.prompt!r}")
    if cfg.teacher_files is not None and sorted(cfg.teacher_files) != sorted(cfg.tasks):
        raise ConfigError(f"teacher_files: one file per task of the run ({', '.join(cfg.tasks)}); it names "
                          f"{', '.join(sorted(cfg.teacher_files))}")


def check_teachers(name: str, cfg: PretrainConfig, teachers_name: str, teachers_cfg: Optional[PretrainConfig]) -> None:
    """ConfigError unless pre-training ``teachers_name`` can teach ``cfg``: a per-task run
    holding every task of ``cfg``, with the same prompt length and formulation (and text
    format and prompt position on seq2seq, layout on MRC): the student's inputs must be laid
    out as the teachers' were."""
    where = f"config pretraining/{name}/teachers"
    if teachers_cfg is None:
        raise ConfigError(f"{where}: no pre-training named {teachers_name!r}")
    if teachers_cfg.prompt != "per-task":
        raise ConfigError(f"{where}: {teachers_name!r} is a {teachers_cfg.prompt!r} pre-training; teachers are "
                          "one prompt per task (prompt: per-task)")
    missing = [t for t in cfg.tasks if t not in teachers_cfg.tasks]
    if missing:
        raise ConfigError(f"{where}: {teachers_name!r} has no teacher for {', '.join(missing)}")
    shared = ("prompt_length", "formulation", "layout") + (
        ("text_format", "prompt_position", "max_target_length") if cfg.formulation == "seq2seq" else ())
    for key in shared:
        if getattr(cfg, key) != getattr(teachers_cfg, key):
            raise ConfigError(f"{where}: {teachers_name!r} has {key} {getattr(teachers_cfg, key)!r}; this run has "
                              f"{getattr(cfg, key)!r} (student and teachers must read the same inputs)")


def check_upstream_tasks(name: str, cfg: PretrainConfig, paper_data_files=None) -> List:
    """The registered upstream tasks of ``cfg``; ConfigError for an unknown one or an UNSEEN
    TASK task (held out of every pre-training, MP2 4.1)."""
    from .tasks import resolve_task

    tasks = [resolve_task(t, paper_data_files) for t in cfg.tasks]
    for task in tasks:
        if task.track == "unseen-task":
            raise ConfigError(f"config pretraining/{name}/tasks: {task.name} is an UNSEEN TASK task, held out of "
                              "every pre-training")
    return tasks


# ---------------------------------------------------------------------------------------
# data


class HeldOut:
    """Texts that must not reach pre-training: the test pools of every downstream task of a
    suite and the few-shot pools (the downstream reserves) of its UNSEEN DATA tasks.
    UNSEEN TASK tasks are never pre-training tasks (``check_upstream_tasks``); their
    training texts may occur inside an upstream task built from the same documents (a BBC
    first sentence in next-sentence choice, a WSJ sentence of language-id in pos-first-noun),
    their test pools never.

    An upstream example is held out when its text, second text or any option equals one of
    them or, in the embedded suite, occurs inside one: upstream tasks built from documents
    (a sentence, a headline) must not show a piece of a downstream document. The paper
    suite's pools hold millions of rows, so there it is exact matches only (its upstream
    tasks are whole datasets, not pieces of downstream documents)."""

    MIN_SUBSTRING = 20  # shorter texts (a label word, "yes") may occur anywhere by chance

    def __init__(self, texts: set, substrings: bool):
        self.texts = texts
        self.substrings = substrings
        self.joined = "\x00".join(sorted(texts)) if substrings else ""
        # every run of 3 words of the held-out texts: a text of 5+ words inside one of them
        # has its 2nd-4th words (whole words there) among these, so most texts are cleared
        # without scanning ``joined``
        self.trigrams = set()
        if substrings:
            for t in texts:
                words = t.split()
                self.trigrams.update(hash(" ".join(words[i:i + 3])) for i in range(len(words) - 2))

    def __contains__(self, text: Optional[str]) -> bool:
        if text is None:
            return False
        if text in self.texts:
            return True
        if not self.substrings or len(text) < self.MIN_SUBSTRING:
            return False
        words = text.split()
        if len(words) >= 5 and hash(" ".join(words[1:4])) not in self.trigrams:
            return False
        return text in self.joined

    def holds(self, ex) -> bool:
        return any(t in self for t in (ex.text, ex.text_b, *(ex.options or ())))


def held_out_texts(suite: str, data_dir: str, protocol, paper_data_files=None, languages=None) -> HeldOut:
    """The ``HeldOut`` texts of ``suite``'s downstream tasks in ``languages`` (None: all):
    a text can only reach upstream data written in its own language, so MP2's Chinese
    pre-training holds out the Chinese tasks' texts, and the English tasks of ATTEMPT's
    suite (MPT's, ComPT's) are not loaded for it."""
    from .splits import few_shot_pool
    from .tasks import TASKS, resolve_task

    out: set = set()
    for name in TASKS:
        spec = TASKS.get(name)
        if spec.suite != suite or spec.track == "upstream" or (languages is not None and spec.language not in languages):
            continue
        pools = resolve_task(name, paper_data_files).load_pools(data_dir)
        held = list(pools.test)
        if spec.track == "unseen-data":
            held += few_shot_pool(spec, pools, protocol)
        for ex in held:
            out.update(t for t in (ex.text, ex.text_b, *(ex.options or ())) if t is not None)
    return HeldOut(out, substrings=suite == "embedded")


def upstream_pools(task, data_dir: str, held_out: HeldOut):
    """A task's pools for pre-training: sources built from documents (PPT's tasks) leave
    out the documents that show a held-out text before they draw."""
    from .tasks.documents import BbcDocumentSource, HubDocumentSource

    if isinstance(task.source, (BbcDocumentSource, HubDocumentSource)):
        return task.source.load(data_dir, held_out)
    return task.load_pools(data_dir)


def dev_size(n: int, fraction: float, dev_max: Optional[int]) -> int:
    """How many of a task's ``n`` upstream examples its dev slice holds (at least 1): with
    ``dev_max``, MPMP's ``min(ceil(fraction n), dev_max)`` (``PretrainConfig.dev_max``);
    without, ``round(fraction n)``."""
    if dev_max is None:
        return max(1, int(round(n * fraction)))
    return max(1, min(math.ceil(fraction * n), dev_max))  # HF: ceil(test_size * n_samples)


def upstream_data(task, pools, protocol, held_out: HeldOut, cfg: PretrainConfig) -> Tuple[list, list]:
    """(train, dev) pre-training examples of one task: its training pool (an UNSEEN DATA
    task's without its downstream reserve) without held-out texts, in a seeded dev slice and
    the rest (then the caps)."""
    from .splits import in_downstream_reserve

    fraction = protocol.downstream_reserve if task.track == "unseen-data" else None
    kept = [ex for ex in sorted(pools.train, key=lambda ex: ex.id)
            if fraction is None or not in_downstream_reserve(ex.id, fraction)]
    random.Random(f"pretrain-dev|{cfg.seed}|{task.name}").shuffle(kept)
    n_dev = dev_size(len(kept), cfg.dev_fraction, cfg.dev_max)
    dev, train = kept[:n_dev], kept[n_dev:]
    if cfg.dev_cap is not None:
        dev = dev[:cfg.dev_cap]
    if cfg.train_cap is not None:
        train = train[:cfg.train_cap]
    # after the caps: only the examples that can be used are checked (substring checks cost)
    dev = [ex for ex in dev if not held_out.holds(ex)]
    train = [ex for ex in train if not held_out.holds(ex)]
    if not train or not dev:
        raise ConfigError(f"pre-training task {task.name}: no examples left outside the downstream reserve and "
                          "the held-out texts")
    return train, dev


# The fields of a pre-training config its data depends on (the rest shape the training).
DATA_FIELDS = ("tasks", "dev_fraction", "dev_max", "dev_cap", "train_cap", "seed")
# Fields left out of the settings while null (``asdict_config``): fields added after the
# embedded default's data and checkpoints were built, so their settings hashes stay valid.
OMITTED_WHEN_NULL = ("dev_max",)
# The same for fields added later still, left out while at their defaults (MPT's).
OMITTED_WHEN_DEFAULT = ("formulation", "text_format", "prompt_position", "max_target_length", "reader", "teachers",
                        "teacher_files", "distill", "distill_lambda", "distill_temperature", "task_sampling",
                        "max_tasks_per_batch", "uv_init", "uv_init_std", "lr_schedule", "warmup_steps")
DATA_FILE = "examples.json.gz"
DATA_MANIFEST = "manifest.json"


def data_settings_of(settings: Mapping[str, Any]) -> Dict[str, Any]:
    """What a pre-training's data depends on, from its settings: not the backbone, not the
    learning rates. Its hash names the data node every backbone's pre-training reads."""
    return {"pretraining": settings["pretraining"],
            "config": {k: settings["config"][k] for k in DATA_FIELDS if k in settings["config"]},
            "protocol": settings["protocol"], "data_files": settings["data_files"]}


def build_data(settings: Mapping[str, Any], data_dir: str, log=print) -> Tuple[Dict[str, Tuple[list, list]], List]:
    """({task: (train, dev)}, the task specs) of a pre-training's settings: its upstream
    tasks without the downstream reserves and held-out texts (``upstream_data``)."""
    from .splits import Protocol

    name = settings["pretraining"]
    cfg = make_pretrain_config(name, settings["config"])
    files = settings.get("data_files") or {}
    tasks = check_upstream_tasks(name, cfg, files)
    protocol = Protocol(downstream_reserve=settings["protocol"]["downstream_reserve"])
    suites = {t.suite for t in tasks}
    if len(suites) != 1:
        raise ConfigError(f"pre-training {name}: its tasks come from several suites ({', '.join(sorted(suites))})")
    held_out = held_out_texts(suites.pop(), data_dir, protocol, files, {t.language for t in tasks})
    data = {}
    for task in tasks:
        data[task.name] = upstream_data(task, upstream_pools(task, data_dir, held_out), protocol, held_out, cfg)
        log(f"{task.name}: {len(data[task.name][0])} train / {len(data[task.name][1])} dev upstream examples")
    return data, tasks


def write_data(out_dir: str, settings: Mapping[str, Any], data: Mapping[str, Tuple[list, list]], tasks) -> dict:
    """The data node: ``examples.json.gz`` (every task's train and dev examples) and
    ``manifest.json`` (its settings and their hash, per-task sizes, the file's sha256)."""
    import dataclasses
    import gzip
    import json

    from .config import config_hash
    from .io import git_state, package_versions, sha256_file, write_json_atomic

    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, DATA_FILE)
    body = {name: {part: [dataclasses.asdict(ex) for ex in examples] for part, examples in zip(("train", "dev"), pair)}
            for name, pair in data.items()}
    with gzip.GzipFile(path + ".part", "wb", mtime=0) as f:  # mtime 0: the same data, the same bytes
        f.write(json.dumps(body, ensure_ascii=False, sort_keys=True).encode("utf-8"))
    os.replace(path + ".part", path)
    manifest = {"settings": dict(settings), "settings_hash": config_hash(dict(settings)),
                "file": DATA_FILE, "sha256": sha256_file(path),
                "tasks": [{"name": t.name, "family": t.family, "track": t.track, "kind": t.kind,
                           "train": len(data[t.name][0]), "dev": len(data[t.name][1])} for t in tasks],
                "provenance": {"packages": package_versions(), "git": git_state()}}
    write_json_atomic(os.path.join(out_dir, DATA_MANIFEST), manifest)
    return manifest


def read_data(data_path: str, settings: Mapping[str, Any]) -> Tuple[Dict[str, Tuple[list, list]], dict]:
    """(the examples, the manifest) of the data node at ``data_path`` (its folder);
    ConfigError if it was built for other settings or its file is not the one its manifest
    hashed."""
    import gzip
    import json

    from .config import config_hash
    from .io import read_json, sha256_file
    from .tasks.base import Example

    manifest = read_json(os.path.join(data_path, DATA_MANIFEST))
    if manifest["settings_hash"] != config_hash(data_settings_of(settings)):
        raise ConfigError(f"pre-training data {data_path} was built for other settings than "
                          f"{settings['pretraining']!r}'s; rerun the pretrain-data job")
    path = os.path.join(data_path, manifest["file"])
    if sha256_file(path) != manifest["sha256"]:
        raise ConfigError(f"pre-training data {path} does not match its manifest's sha256; rerun the "
                          "pretrain-data job")
    with gzip.open(path, "rb") as f:
        body = json.loads(f.read().decode("utf-8"))

    def example(d):
        return Example(**{**d, "options": None if d["options"] is None else tuple(d["options"]),
                          "answers": tuple(d["answers"])})

    return {t["name"]: tuple([example(d) for d in body[t["name"]][part]] for part in ("train", "dev"))
            for t in manifest["tasks"]}, manifest


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


def _save_atomic(obj, path: str) -> None:
    tmp = f"{path}.part"
    torch.save(obj, tmp)
    os.replace(tmp, path)


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


def pretrain_formulation(cfg: PretrainConfig, task):
    """The formulation a pre-training lays ``task`` out in (``PretrainConfig.formulation``)."""
    from .formulation import formulation

    return formulation(cfg.formulation, task, cfg)


def run_pretraining(cfg: PretrainConfig, spec, backbone, tokenizer, tasks: Sequence, data: Dict[str, Tuple[list, list]],
                    resume_path: Optional[str], settings_hash: str, log=print, device=None,
                    stop_after: Optional[int] = None, cache_limit: Optional[int] = ENCODING_CACHE,
                    teachers: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Pre-train; return {"state": best tensors, "best_step", "best_dev", "dev_curve",
    "loss_curve", "steps_run", "task_steps": steps in which each task had examples (None
    after resuming a file that did not count them), "encoding_cache": its ``stats``}.
    ``stop_after``: return after that many steps (a simulated kill: the resume checkpoint is
    what survives). ``cache_limit``: encodings held at most (``EncodingCache``; None: every
    one seen, O(examples seen) memory); it changes the memory and time, never the result.
    ``teachers``: {"tasks", "prompts" (n, L, d), "head" (MRC)} when ``cfg.distill`` is set."""
    from .distill import hidden_mse, logits_kl, prompt_distance
    from .formats import in_format
    from .methods.common import frequent_tokens
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
        if resume_path and os.path.exists(resume_path):
            saved = torch.load(resume_path, weights_only=False)
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
                log(f"resumed from {resume_path} at step {progress['step']}")
            else:
                log(f"{resume_path} belongs to other settings: starting afresh")

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
            log(f"step {step}/{cfg.steps}: mean dev {mean:.2f} (best {progress['best_dev']:.2f} at step "
                f"{progress['best_step']})")

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
                batch = formulations[rows[0]].collate(items, [row_of(r) for r in rows], pad, device)
                with autocast(cfg.precision, device):
                    total = total + example_losses(rows, batch).sum()
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
                _save_atomic({"settings_hash": settings_hash, "params": _state_tensors(model),
                              "optimizer": optimizer.state_dict(), "sampler": sampler.getstate(),
                              "streams": [s.state() for s in streams], "noise": [g.get_state() for g in noise],
                              "torch_rng": torch.get_rng_state(), "progress": progress, "window": window}, resume_path)
            if stop_after is not None and step >= stop_after:
                break
    finally:
        for hook in model._hooks + (teacher._hooks if teacher is not None else []):
            hook.remove()  # the backbone may be used again in the same process (also after an error)
    log(f"{progress['step']} steps in {time.perf_counter() - start:.1f}s")
    return {"state": progress["best_state"], "best_step": progress["best_step"], "best_dev": progress["best_dev"],
            "dev_curve": progress["dev_curve"], "loss_curve": progress["loss_curve"], "steps_run": progress["step"],
            "task_steps": progress["task_steps"], "encoding_cache": cache.stats()}


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


def asdict_config(cfg: PretrainConfig) -> Dict[str, Any]:
    """The settings form of ``cfg`` (``OMITTED_WHEN_NULL`` fields left out while null)."""
    out = asdict(cfg)
    out["tasks"] = list(cfg.tasks)
    for key in OMITTED_WHEN_NULL:
        if out[key] is None:
            del out[key]
    defaults = PretrainConfig()
    for key in OMITTED_WHEN_DEFAULT:
        if out[key] == getattr(defaults, key):
            del out[key]
    return out
