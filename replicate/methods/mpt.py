"""MPT (Wang et al. 2023): multitask prompt tuning, the target adaptation of a prompt
distilled and decomposed on source tasks (docs/methods/mpt.md).

Source training is a pre-training node (``replicate.pretrain``): teachers are a
``prompt: per-task`` run (one PT prompt per source task); the distilled run (``prompt: mpt``,
``teachers: <that run>``, ``distill: logits-hidden``) trains a shared prompt P* and per task
vectors u_k, v_k, task k's prompt being P* ∘ (u_k v_kᵀ), with MPT eq 5's loss and
stochastic task sampling. Target adaptation (this module) starts every seed from P* and
the average of the source u_k and v_k (MPT §3.2, App. A; peft's ``AVERAGE_SOURCE_TASKS``,
``tuners/multitask_prompt_tuning/model.py:87-89``) and tunes P* at ``lr`` (MPT: 0.3) and u,
v at ``task_lr`` (MPT: 0.4). Its prompt is an input prompt like PT's, in either
formulation: T5 text to text (the paper) or MP2's MRC with a span head (the embedded
default, where the head starts from the source training's).

Registered variants: the rows of MPT Tables 6 and 7 and the text-only ablations of §4.3.
Each names the source training it starts from; the paper config defines those runs.
- ``mpt``: MPT (Table 6's last row; Table 7's "w/ 6 Source Tasks" reads its cells).
- ``mpt-wo-distillation``: decomposition, no distillation (Table 6's third row).
- ``mpt-wo-decomposition``: one vanilla prompt shared by every source task, distilled from
  the same teachers (Table 6's second row); the target tunes it as PT does.
- ``mpt-wo-decomposition-wo-distillation``: the vanilla shared prompt without
  distillation (Table 6's first row: SPoT's multi-task source prompt).
- ``mpt-w-12-source-tasks``: sources and teachers of Table 7's twelve tasks.
- ``mpt-wo-hidden-loss``, ``mpt-prompt-distance``, ``mpt-wo-task-sampling``: §4.3's
  source-training ablations (their own runs); ``mpt-only-shared``, ``mpt-only-task``:
  §4.3's target-adaptation ablations ("only updating task-shared component (i.e., removing
  task-specific vectors)": the prompt is P* alone; "only updating task-specific vectors
  (i.e., freezing task-shared component)"). §4.3 reports each as a SuperGLUE average, so
  their rows follow MPT's in Table 6 only (``Method.ablation_tables``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import torch

from ..errors import ConfigError
from ..model import DecomposedPrompt, InputPrompt
from .base import check_fields, register_method, require_pretraining
from .common import meta_span_head
from .prompt_tuning import PromptTuning, PromptTuningConfig

ADAPTS = ("both", "shared", "task")


@dataclass
class MPTConfig(PromptTuningConfig):
    """MPT's target adaptation (the shared fields: see TrainConfig, PromptConfig).

    pretraining: the source training whose P* and averaged u, v (or, for the variants
        without decomposition, whose single prompt) start every seed.
    task_lr: learning rate of u and v (MPT App. A: 0.4, with ``lr`` 0.3 for P*: "two-speed
        learning rates"); null: ``lr``.
    adapt: "both" (MPT), "shared" (P* alone: u and v removed) or "task" (u and v alone:
        P* frozen); MPT §4.3's target-adaptation ablations.
    transfer_head: MRC only: the span head starts from the source training's (True) or
        from a fresh draw.
    """

    pretraining: Optional[str] = "mpt"
    task_lr: Optional[float] = None
    adapt: str = "both"
    transfer_head: bool = True

    def validate(self) -> None:
        super().validate()
        check_fields(self, choices={"adapt": ADAPTS}, positive=("task_lr",))
        if not self.pretraining:
            raise ConfigError("pretraining: name the source training (a pre-training with prompt: mpt) MPT adapts")


class MPT(PromptTuning):
    config_cls = MPTConfig
    formulations = ("mrc", "seq2seq")
    prompt_encoders = ("none",)

    def __init__(self, name: str, label: str, defaults: Dict[str, Any], source: str = "mpt",
                 ablation_of: Optional[str] = None, rows: tuple = ()):
        self.name, self.paper_label, self.defaults = name, label, defaults
        self.source = source  # the source training's prompt kind: "mpt" (decomposed) or "single"
        self.ablation_of = ablation_of
        # §4.3's ablations report SuperGLUE averages: their rows follow MPT's in Table 6 alone
        self.ablation_tables = (("mpt", "6"),) if ablation_of else ()
        self.rows = rows

    def pretraining(self, cfg: MPTConfig, task=None) -> Optional[str]:
        return cfg.pretraining

    def check_pretraining(self, cfg: MPTConfig, name: str, pretrain_cfg) -> None:
        """The source training must be of this variant's prompt kind and lay inputs out as
        the target does: the same prompt length and formulation (on seq2seq the same text
        format and prompt position; on MRC the task's own options)."""
        same = {"text_format": cfg.text_format, "prompt_position": cfg.prompt_position} \
            if cfg.formulation == "seq2seq" else {"layout": "options"}
        require_pretraining(self.name, name, pretrain_cfg, prompt=self.source, prompt_length=cfg.prompt_length,
                            formulation=cfg.formulation, **same)
        if self.source == "single" and cfg.adapt != "both":
            raise ConfigError(f"config methods/{self.name}/adapt: a prompt without decomposition has no P* and "
                              f"u, v to adapt apart; adapt must be 'both', not {cfg.adapt!r}")

    def build(self, backbone, spec, tokenizer, cfg: MPTConfig, seeds: List[int], init_tokens=None, pretrained=None):
        from ..model import PromptedMRC, PromptedSeq2Seq
        from .common import pretrained_span_head, span_head

        if pretrained is None:
            raise ConfigError(f"{self.name}: needs the checkpoint of its source training ({cfg.pretraining!r})")
        n, length, d = len(seeds), cfg.prompt_length, spec.d_model
        key = "shared" if self.source == "mpt" else "prompt"
        start = pretrained.get(key)
        if start is None or tuple(start.shape) != (length, d):
            got = None if start is None else tuple(start.shape)
            raise ConfigError(f"{self.name}: the source training's {key} prompt is {got}; the method's config "
                              f"needs ({length}, {d}) from a prompt: {self.source} pre-training")
        backbone.requires_grad_(False)
        if self.source == "mpt":
            u, v = pretrained["u"].mean(0), pretrained["v"].mean(0)  # the average of the source tasks'
            if cfg.adapt == "shared":  # the task-specific vectors removed: the prompt is P* itself
                u, v = torch.ones(length), torch.ones(d)
            prompt = DecomposedPrompt(start.float().repeat(n, 1, 1), u.float().repeat(n, 1), v.float().repeat(n, 1),
                                      seed_axis=True)
            if cfg.adapt == "shared":
                prompt.u.requires_grad_(False)
                prompt.v.requires_grad_(False)
            if cfg.adapt == "task":
                prompt.shared.requires_grad_(False)
        else:
            prompt = InputPrompt(start.float().unsqueeze(0).repeat(n, 1, 1))
        if self.seq2seq(cfg):
            return PromptedSeq2Seq(backbone, prompt)
        head = pretrained.get("head")
        head = pretrained_span_head(head, n) if cfg.transfer_head and head is not None else span_head(d, seeds)
        return PromptedMRC(backbone, spec, head, prompt)

    def param_groups(self, model, cfg: MPTConfig) -> List[Dict[str, Any]]:
        """P* at ``lr``, u and v at ``task_lr`` (each left out where ``adapt`` freezes it);
        the head, on MRC, at ``head_lr``."""
        prompt = model.prompt
        if isinstance(prompt, DecomposedPrompt):
            groups = []
            if cfg.adapt in ("both", "shared"):
                groups.append({"params": [prompt.shared], "lr": cfg.lr})
            if cfg.adapt in ("both", "task"):
                groups.append({"params": [prompt.u, prompt.v], "lr": cfg.task_lr or cfg.lr})
        else:
            groups = [{"params": [prompt.weight], "lr": cfg.lr}]
        if getattr(model, "head", None) is not None:
            groups.append({"params": list(model.head.parameters()), "lr": cfg.head_lr})
        return groups

    def prompt_modules(self, spec, cfg: MPTConfig, n_seeds: int = 1):
        """What a seed tunes: P* (L x d), u (L) and v (d): 76,800 + 100 + 768 = 77,668 on
        T5-base with 100 tokens (MPT Fig 2's "77.6K"); P* alone or u, v alone under
        ``adapt``; the vanilla prompt (L x d) without decomposition; on MRC the head."""
        d, length = spec.d_model, cfg.prompt_length
        meta = lambda *shape: torch.empty(n_seeds, *shape, device="meta")  # noqa: E731
        if self.source == "single" or cfg.adapt == "shared":
            prompt: torch.nn.Module = InputPrompt(meta(length, d))
        elif cfg.adapt == "task":
            prompt = torch.nn.ParameterDict({"u": torch.nn.Parameter(meta(length)), "v": torch.nn.Parameter(meta(d))})
        else:
            prompt = DecomposedPrompt(meta(length, d), meta(length), meta(d), seed_axis=True)
        modules = {"prompt": prompt}
        if not self.seq2seq(cfg):
            modules["head"] = meta_span_head(d, n_seeds)
        return modules


register_method(MPT("mpt", "MPT", {"pretraining": "mpt"}, rows=("mpt-w-6-source-tasks",)))
register_method(MPT("mpt-wo-distillation", "MPT w/o distillation", {"pretraining": "mpt-wo-distillation"}))
register_method(MPT("mpt-wo-decomposition", "MPT w/o decomposition", {"pretraining": "mpt-wo-decomposition"},
                    source="single"))
register_method(MPT("mpt-wo-decomposition-wo-distillation", "MPT w/o decomposition, w/o distillation",
                    {"pretraining": "mpt-wo-decomposition-wo-distillation"}, source="single"))
register_method(MPT("mpt-w-12-source-tasks", "MPT (w/ 12 source tasks)", {"pretraining": "mpt-12-sources"}))
register_method(MPT("mpt-wo-hidden-loss", "MPT w/o hidden-state loss", {"pretraining": "mpt-wo-hidden-loss"},
                    ablation_of="mpt"))
register_method(MPT("mpt-prompt-distance", "MPT with prompt-distance loss", {"pretraining": "mpt-prompt-distance"},
                    ablation_of="mpt"))
register_method(MPT("mpt-wo-task-sampling", "MPT w/o stochastic task sampling",
                    {"pretraining": "mpt-wo-task-sampling"}, ablation_of="mpt"))
register_method(MPT("mpt-only-shared", "MPT, only P* adapted", {"adapt": "shared"}, ablation_of="mpt"))
register_method(MPT("mpt-only-task", "MPT, only u, v adapted", {"adapt": "task"}, ablation_of="mpt"))
