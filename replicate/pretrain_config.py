"""A pre-training's config (config ``pretraining: <name>: {...}``): its fields, their checks,
and its settings form. What runs it: ``replicate.pretrain`` (the model and the loop); what it
reads: ``replicate.pretrain_data``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Dict, List, Mapping, Optional, Tuple

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


# Fields left out of the settings while null (``asdict_config``): fields added after the
# embedded default's data and checkpoints were built, so their settings hashes stay valid.
OMITTED_WHEN_NULL = ("dev_max",)
# The same for fields added later still, left out while at their defaults (MPT's).
OMITTED_WHEN_DEFAULT = ("formulation", "text_format", "prompt_position", "max_target_length", "reader", "teachers",
                        "teacher_files", "distill", "distill_lambda", "distill_temperature", "task_sampling",
                        "max_tasks_per_batch", "uv_init", "uv_init_std", "lr_schedule", "warmup_steps")


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
