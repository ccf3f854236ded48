"""What every method shares: its config fields, its registration, its parameter count.

A method is one module with a dataclass config and one ``register_method(...)`` call. The
training loop (``replicate.train``) is method-agnostic: a method builds a ``PromptedMRC``
for a group of seeds and names its trainable parameter groups.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Dict, List, Mapping, Optional, Sequence, Type

from ..errors import ConfigError
from ..registry import Registry


def check_fields(cfg, choices: Mapping[str, Sequence[str]] = {}, at_least_one: Sequence[str] = (),
                 positive: Sequence[str] = (), non_negative: Sequence[str] = ()) -> None:
    """ConfigError("<field>: <what is wrong>") for the first of ``cfg``'s fields out of its
    range: one of ``choices[field]``, >= 1 (None allowed where the field is Optional),
    > 0, >= 0."""
    for name, allowed in choices.items():
        if getattr(cfg, name) not in allowed:
            raise ConfigError(f"{name}: must be one of {', '.join(map(repr, allowed))}, not {getattr(cfg, name)!r}")
    for name in at_least_one:
        value = getattr(cfg, name)
        if value is not None and value < 1:
            raise ConfigError(f"{name}: must be >= 1, not {value}")
    for name in positive:
        value = getattr(cfg, name)
        if value is not None and not value > 0:
            raise ConfigError(f"{name}: must be > 0, not {value}")
    for name in non_negative:
        if not getattr(cfg, name) >= 0:
            raise ConfigError(f"{name}: must be >= 0, not {getattr(cfg, name)}")


GRADIENT_FORMULATIONS = ("mrc", "seq2seq")
PROMPT_INITS = ("vocab", "uniform", "ordinal")
PROMPT_ENCODERS = ("none", "mlp")


@dataclass
class TrainConfig:
    """Fields shared by every gradient-trained method. Defaults follow MP2's released code
    (Hzfinfdu/MPMP ``Deep/downstream_run.py`` and ``Deep/trainer.py``) where it states them.

    epochs: passes over the few-shot training set.
    batch_size: examples per step, per seed (a seed-batched step holds seeds x batch_size);
        None = the whole training set in one step (MPMP: ``batch_size = k_shot * num_labels``).
    lr: learning rate of the method's main parameters (prompt, or the whole model).
    head_lr: learning rate of the MRC span head's weight (its bias is fixed at zero).
    weight_decay: AdamW's decoupled weight decay (MPMP: AdamW's default, 0.01).
    max_length: tokens per example, prompt slots included (MPMP: 512).
    eval_every: evaluate on the dev set every this many epochs (and after the last one);
        the checkpoint with the best dev score (earliest on ties) is the one tested.
    grad_clip: maximum gradient norm, applied per seed; 0 disables (MPMP clips nothing).
    train_mode: run the backbone in train mode (dropout on) while training. MPMP calls
        ``model.eval()`` before every step, so its prompts train without dropout.
    dropout: overrides every dropout probability of the backbone (None keeps the backbone's);
        matters only with train_mode.
    diverge_factor: a seed whose step loss exceeds this multiple of its first step's loss
        (or is not finite) has diverged: it stops and is recorded as failed with the reason,
        while the other seeds of its group go on. 0 disables the multiple.
    eval_batch_size: examples per forward pass when evaluating.
    precision: "fp32", or "bf16" to run the backbone under bfloat16 autocast (parameters,
        optimizer state and losses stay fp32; about 1.7x faster on CPUs with AVX512-BF16).
    lr_schedule: "constant", or "linear" decay to 0 over each stage's steps (transformers'
        linear schedule, ATTEMPT's and ComPT's trainers).
    warmup: the fraction of each stage's optimizer steps over which the learning rate
        rises linearly from 0 (ComPT: 0.2); 0 = none.
    warmup_steps: the same as a number of steps (ATTEMPT: 500); used when warmup is 0.
    select_on_dev: test each seed's best checkpoint on dev (True), or its last one (False:
        ComPT's released configs run no evaluation, ``do_eval: false``).
    select_metric: the dev metric checkpoints are selected on (None: the task's metric);
        "average" in the seq2seq formulation is ATTEMPT's ``average_metrics``, the mean of
        the task's metrics (MRPC: accuracy and F1; STS-B: Pearson and Spearman).
    formulation: how a task becomes tensors and answers (``formulation.py``): "mrc" (MP2's
        span format on an encoder, with a span head) or "seq2seq" (text-to-text on T5,
        ``seq2seq.py``; no head).
    text_format, reader, prompt_position, max_target_length: the seq2seq formulation's:
        which lineage's text form of a task ("attempt" or "compt", ``TaskSpec.formats``);
        which answer reader the metrics and dev selection read ("rank" classification or
        "generate"; both are recorded on the test set); where the prompt sits ("prefix", or
        "suffix": after the input, as ComPT's code); target tokens at most (``</s>``
        included), which also bounds generation.
    """

    epochs: int = 20
    batch_size: Optional[int] = None
    lr: float = 1e-3
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    max_length: int = 128
    eval_every: int = 1
    grad_clip: float = 0.0
    train_mode: bool = False
    dropout: Optional[float] = None
    diverge_factor: float = 100.0
    eval_batch_size: int = 64
    precision: str = "fp32"
    lr_schedule: str = "constant"
    warmup: float = 0.0
    warmup_steps: int = 0
    select_on_dev: bool = True
    select_metric: Optional[str] = None
    formulation: str = "mrc"
    text_format: str = "attempt"
    reader: str = "rank"
    prompt_position: str = "prefix"
    max_target_length: int = 16

    def validate(self) -> None:
        """Raise ConfigError("<field>: <what is wrong>") for the first field out of range."""
        from ..seq2seq import PROMPT_POSITIONS, READERS
        from ..tasks.base import LINEAGES

        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"batch_size: must be >= 1 (or null: the whole training set), not {self.batch_size}")
        check_fields(self, choices={"precision": ("fp32", "bf16"), "lr_schedule": ("constant", "linear"),
                                    "formulation": GRADIENT_FORMULATIONS, "text_format": LINEAGES,
                                    "reader": READERS, "prompt_position": PROMPT_POSITIONS},
                     at_least_one=("epochs", "max_length", "eval_every", "eval_batch_size", "max_target_length"),
                     positive=("lr", "head_lr"),
                     non_negative=("weight_decay", "grad_clip", "diverge_factor", "warmup", "warmup_steps"))
        if self.warmup >= 1:
            raise ConfigError(f"warmup: a fraction of the steps must be < 1, not {self.warmup}")
        if self.select_metric is not None and (self.select_metric != "average" or self.formulation != "seq2seq"):
            raise ConfigError(f"select_metric: null (the task's metric) or 'average' (seq2seq formulation only), "
                              f"not {self.select_metric!r}")
        if self.dropout is not None and not 0 <= self.dropout <= 1:
            raise ConfigError(f"dropout: a probability must be in [0, 1], not {self.dropout}")


@dataclass
class PromptConfig(TrainConfig):
    """A soft prompt on a frozen backbone.

    prompt_length: soft tokens per layer (MP2: 50; PPT, Lester, MPT: 100).
    init: "vocab" copies embeddings of tokens drawn uniformly from the ``init_vocab_size``
        most frequent tokens of the task's training pool (Lester et al.'s sampled-vocabulary
        init: "the 5,000 most common tokens"); "uniform" draws U(-init_range, init_range);
        "ordinal" copies input-embedding row i into prompt row i (ids 0..L-1; on T5 ``<pad>``,
        ``</s>``, ``<unk>``, then the most frequent pieces), the same for every seed: ComPT's
        prompt encoders start so because they index the embedding matrix by the prompt
        token's position, not its id (``compt/encoders/encoders.py:64-67, 80-81, 138-143``;
        its PT tokens ``<task_0>``... end in digits, so the word init of l. 69-78 skips them).
    init_vocab_size: how many of the most frequent tokens init="vocab" draws from.
    init_range: half-width for init="uniform" (Lester et al.: 0.5).
    prompt_encoder: "none" (the prompt rows are the prompt) or "mlp": the rows pass through a
        per-seed Linear(d, h) -> GELU -> Linear(h, d) before they reach the encoder (ComPT's
        PT, ``model.MLPPrompt``); only PT on the seq2seq formulation applies it.
    prompt_encoder_hidden: h, the MLP's hidden size; null = d_model (ComPT: ``hidden_size``
        -1 means the embedding size, ``encoders.py:253``; paper §3.2: "a hidden size of d").
    """

    prompt_length: int = 20
    init: str = "vocab"
    init_vocab_size: int = 5000
    init_range: float = 0.5
    prompt_encoder: str = "none"
    prompt_encoder_hidden: Optional[int] = None

    def validate(self) -> None:
        super().validate()
        check_fields(self, choices={"init": PROMPT_INITS, "prompt_encoder": PROMPT_ENCODERS},
                     at_least_one=("prompt_length", "init_vocab_size", "prompt_encoder_hidden"),
                     positive=("init_range",))
        if self.prompt_encoder_hidden is not None and self.prompt_encoder == "none":
            raise ConfigError("prompt_encoder_hidden: set, but prompt_encoder is 'none' (no encoder to size)")


def require_pretraining(method: str, name: str, pretrain_cfg, **want: Any) -> None:
    """ConfigError unless pre-training ``name``'s config has the ``want``ed field values
    (a method's starting point must match its prompt kind, length, layout, K)."""
    got = {k: getattr(pretrain_cfg, k) for k in want}
    if got != want:
        show = lambda d: ", ".join(f"{k} {v!r}" for k, v in d.items())  # noqa: E731
        raise ConfigError(f"config methods/{method}: pre-training {name!r} has {show(got)}; the method needs "
                          f"{show(want)}")


def coerce(key: str, type_name: str, value: Any) -> Any:
    """``value`` as the field's declared type, accepting every YAML spelling of a number
    (PyYAML reads ``3e-2`` as a string) but never a fraction where an integer is meant."""
    optional = type_name.startswith("Optional[")
    base = type_name[len("Optional["):-1] if optional else type_name
    if value is None:
        if optional:
            return None
        raise ConfigError(f"config {key}: must be a {base}, not null")
    if base == "bool":
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config {key}: must be true or false, not {value!r}")
    if base in ("int", "float"):
        number = value
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                raise ConfigError(f"config {key}: {value!r} is not a number") from None
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise ConfigError(f"config {key}: {value!r} is not a number")
        if not math.isfinite(number):  # "inf" or "nan" as a string: no count or rate can be one
            raise ConfigError(f"config {key}: {value!r} is not a finite number")
        if base == "float":
            return float(number)
        if float(number) != int(number):
            raise ConfigError(f"config {key}: must be a whole number, not {value!r}")
        return int(number)
    if base == "str" and not isinstance(value, str):
        raise ConfigError(f"config {key}: must be a string, not {value!r}")
    return value


class Method:
    """A registered method. Subclasses set name, config_cls, seed_batched and implement
    build(), param_groups() and prompt_modules()."""

    name: str = ""
    config_cls: Type[TrainConfig] = TrainConfig
    seed_batched: bool = True  # False: the trainer runs one seed at a time (model tuning)
    # True: one job trains every task of a task set together (ComPT); the config has a
    # ``task_set`` field, and ``build_set`` builds the model of (seeds x tasks) rows.
    multi_task: bool = False
    paper_label: str = ""      # the row label in the papers' tables
    paradigm: str = "gradient"  # "gradient" or "black-box": the paper blocks its rows can fill
    rows: tuple = ()            # other paper rows that are this method's cells (same config)
    # Paper rows that read this method's cells another way: row -> view. "stage1": stage I
    # alone, the test score (or wall time) of stage I's best checkpoint (MP2's Router-only).
    row_views: Mapping[str, str] = {}
    # A variant of another method that no paper prints (an ablation of the harness's own):
    # its rows follow that method's rows wherever the run regenerates them (tables.build_table).
    ablation_of: Optional[str] = None
    # Where an ablation's rows follow its method's: ("paper", "table") pairs (MPT §4.3's
    # ablations are SuperGLUE averages, Table 6's); empty: every table that has the method.
    ablation_tables: tuple = ()
    # Where the method's own row and ``rows`` fill: ("paper", "table") pairs; empty: every
    # table that prints them (ComPT's SET2 runs fill Tables 2, 4 and 7's rows, which carry the
    # same names as Table 1's GLUE runs).
    tables: tuple = ()
    progress_unit: str = "epoch"  # what the dev curve's x counts
    formulations: tuple = ("mrc",)  # the values of ``formulation`` this method builds a model for
    prompt_encoders: tuple = ("none",)  # the values of ``prompt_encoder`` it applies
    prompt_encoder_formulations: tuple = ("seq2seq",)  # ... on these formulations (ComPT: both)
    trainer: Any = None         # the class that tunes a group (None: train.GroupTrainer)

    variant_of: Optional[str] = None  # a config-declared variant's base method (``method_variant``)
    # Field values that differ from config_cls's defaults: one config class serves several
    # registered variants (MP2 shallow / deep, with / without FSL).
    defaults: Mapping[str, Any] = {}

    def make_config(self, overrides: Optional[Mapping[str, Any]] = None) -> TrainConfig:
        types = {f.name: f.type for f in fields(self.config_cls)}
        unknown = sorted(set(overrides or {}) - set(types))
        if unknown:
            raise ConfigError(f"method {self.name}: unknown config field(s) {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(types))}")
        values = {k: coerce(f"methods/{self.name}/{k}", types[k], v) for k, v in (overrides or {}).items()}
        cfg = self.config_cls(**{**self.defaults, **values})
        try:
            cfg.validate()
        except ConfigError as e:
            raise ConfigError(f"config methods/{self.name}/{e}") from None
        if getattr(cfg, "formulation", "mrc") not in self.formulations:
            raise ConfigError(f"config methods/{self.name}/formulation: {self.name} is built for "
                              f"{', '.join(map(repr, self.formulations))}, not {cfg.formulation!r}")
        encoder = getattr(cfg, "prompt_encoder", "none")
        if encoder != "none" and (encoder not in self.prompt_encoders
                                  or cfg.formulation not in self.prompt_encoder_formulations):
            where = (f"{self.name} on the {cfg.formulation} formulation" if encoder in self.prompt_encoders
                     else self.name)
            raise ConfigError(f"config methods/{self.name}/prompt_encoder: {where} applies no prompt encoder, "
                              f"not {encoder!r} (only pt with formulation seq2seq does)")
        return cfg

    def prompt_length(self, cfg: TrainConfig) -> int:
        return getattr(cfg, "prompt_length", 0)

    def job_config(self, cfg: TrainConfig, shot) -> TrainConfig:
        """The config one job at ``shot`` trains with (ComPT's code doubles its epochs at k <= 10)."""
        return cfg

    # Multi-task methods (``multi_task``, multitask.py) implement these four.
    def build_set(self, backbone, spec, tokenizer, cfg: TrainConfig, seeds: List[int], tasks: Sequence[str]):
        """The model of (seeds x tasks) rows, row = seed index x len(tasks) + task index."""
        raise NotImplementedError

    def on_step(self, model, cfg: TrainConfig, step: int, total_steps: int) -> None:
        """Per-step schedules (ComPT's annealed temperature), before optimizer step ``step``."""

    def row_states(self, model, rows: Sequence[int]) -> List[Dict[str, Any]]:
        """The detached tensors each row needs at inference (what a tested checkpoint keeps)."""
        raise NotImplementedError

    def frozen_model(self, model, cfg: TrainConfig, states: Sequence[Dict], masks: Sequence):
        """An evaluation model whose row i is ``states[i]`` under ``masks[i]``."""
        raise NotImplementedError

    def pretraining(self, cfg: TrainConfig, task=None) -> Optional[str]:
        """The name of the pre-training run (config ``pretraining:``) whose checkpoint this
        method's cells of ``task`` (a TaskSpec) start from; None if they start from the
        backbone alone. Methods whose run depends on the task (PPT's per-format prompts)
        return None without one and raise ConfigError for a task they cannot take."""
        return None

    def declines(self, cfg: TrainConfig, task) -> Optional[str]:
        """Why this method has no cells for ``task`` (a TaskSpec), or None: it takes it."""
        return None

    def check_pretraining(self, cfg: TrainConfig, name: str, pretrain_cfg) -> None:
        """ConfigError if pre-training ``name`` (its PretrainConfig) cannot be this method's
        starting point (another prompt kind, length or layout)."""

    def check_backbone(self, cfg: TrainConfig, spec) -> None:
        """ConfigError (naming the method's field) if ``cfg`` cannot run on backbone ``spec``."""
        if getattr(cfg, "formulation", "mrc") == "seq2seq" and spec.arch != "t5":
            raise ConfigError(f"config methods/{self.name}/formulation: seq2seq needs an encoder-decoder (T5) "
                              f"backbone; {spec.name} is {spec.arch}")

    def formulation(self, cfg: TrainConfig, task):
        """How ``task`` becomes tensors and answers for this method (``formulation.py``)."""
        from ..formulation import formulation

        return formulation(getattr(cfg, "formulation", "mrc"), task, cfg)

    def seq2seq(self, cfg: TrainConfig) -> bool:
        """Whether the backbone is loaded with its decoder and LM head (the seq2seq formulation)."""
        return getattr(cfg, "formulation", "mrc") == "seq2seq"

    def task_view(self, task, cfg: TrainConfig):
        """The task as this method lays it out (``formats.in_format``); by default as
        registered."""
        return task

    def encoder(self, tokenizer, task, cfg: TrainConfig, spec, max_length: Optional[int] = None):
        """What encodes ``task``'s examples for this method: its formulation's encoder (MP2's
        MRC layout by default); ``max_length`` overrides the config's."""
        return self.formulation(cfg, task).encoder(tokenizer, max_length or cfg.max_length, self.prompt_length(cfg),
                                                   spec)

    def build(self, backbone, spec, tokenizer, cfg: TrainConfig, seeds: List[int],
              init_tokens: Optional[List[int]] = None, pretrained: Optional[Mapping[str, Any]] = None):
        """The model for ``seeds``; ``init_tokens``: candidate token ids of init="vocab";
        ``pretrained``: the tensors of the checkpoint named by ``pretraining(cfg)``."""
        raise NotImplementedError

    def param_groups(self, model, cfg: TrainConfig) -> List[Dict[str, Any]]:
        raise NotImplementedError

    def stages(self, model, cfg: TrainConfig) -> List[Any]:
        """The training stages (``train.Stage``): by default one stage of ``cfg.epochs`` over
        ``param_groups``. Methods that train in stages (MP2's router, then prompts) override."""
        from ..train import Stage

        return [Stage("train", cfg.epochs, self.param_groups(model, cfg))]

    def prompt_modules(self, spec, cfg: TrainConfig, n_seeds: int = 1) -> Dict[str, Any]:
        """The method's own trainable modules for ``n_seeds`` seeds, built on the meta device
        from the backbone's dimensions alone (no weights): what ``params`` counts."""
        raise NotImplementedError

    def view_parameters(self, view: str, spec, cfg: TrainConfig) -> int:
        """Tunable parameters the paper prints for a row that views this method's cells."""
        counts = self.trainable_parameters(spec, cfg)
        return counts.get("backbone", 0) + counts.get("prompt", 0)

    def trainable_parameters(self, spec, cfg: TrainConfig) -> Dict[str, int]:
        """Trainable parameters of one seed: {"prompt"|"backbone": n, "head": n}."""
        return {name: sum(p.numel() for p in module.parameters())
                for name, module in self.prompt_modules(spec, cfg, 1).items()}


class PromptMethod(Method):
    """A method that trains a prompt source and the span head on a frozen backbone.
    Subclasses implement ``make_prompt`` (the prompt source holding every seed's prompt)."""

    def make_prompt(self, backbone, spec, cfg, seeds: List[int], init_tokens: Optional[List[int]]):
        raise NotImplementedError

    def build(self, backbone, spec, tokenizer, cfg, seeds: List[int], init_tokens: Optional[List[int]] = None,
              pretrained=None):
        from ..model import PromptedMRC, PromptedSeq2Seq
        from .common import span_head

        backbone.requires_grad_(False)
        prompt = self.make_prompt(backbone, spec, cfg, seeds, init_tokens)
        if self.seq2seq(cfg):  # text-to-text: the LM head reads the answer, no span head
            return PromptedSeq2Seq(backbone, prompt)
        return PromptedMRC(backbone, spec, span_head(spec.d_model, seeds), prompt)

    def param_groups(self, model, cfg) -> List[Dict[str, Any]]:
        groups = [{"params": list(model.prompt.parameters()), "lr": cfg.lr}]
        if getattr(model, "head", None) is not None:
            groups.append({"params": list(model.head.parameters()), "lr": cfg.head_lr})
        return groups


METHODS: Registry[Method] = Registry("method")


def register_method(method: Method) -> Method:
    return METHODS.register(method.name, method)


def method_variant(name: str, base_name: str) -> Method:
    """A variant ``name`` of registered method ``base_name`` declared by a config
    (``methods/<name>/variant_of``: a sweep point such as ComPT with one source prompt): the
    base's class and defaults under its own name, in no paper row. Registered once per process
    (again for the same base: the same object)."""
    import copy

    if name in METHODS:
        existing = METHODS.get(name)
        if existing.variant_of == base_name:
            return existing
        raise ConfigError(f"config methods/{name}/variant_of: {name!r} is already a method"
                          + (f" (a variant of {existing.variant_of})" if existing.variant_of else ""))
    base = METHODS.get(base_name)
    if base.variant_of is not None:
        raise ConfigError(f"config methods/{name}/variant_of: {base_name!r} is itself a variant; name its base "
                          f"{base.variant_of!r}")
    variant = copy.copy(base)
    variant.name, variant.variant_of = name, base_name
    variant.rows, variant.row_views, variant.tables, variant.ablation_of = (), {}, (), None
    variant.paper_label = f"{base.paper_label or base_name} ({name})"
    return register_method(variant)


def method_of(settings: Mapping[str, Any]) -> Method:
    """The method a job's settings name, a config-declared variant included."""
    if settings.get("variant_of"):
        return method_variant(settings["method"], settings["variant_of"])
    return METHODS.get(settings["method"])
