"""PPT (Gu et al. 2022): prompt tuning from a prompt pre-trained on self-supervised tasks
built from unlabelled documents, and the baselines of its tables.

A soft prompt at the input of a frozen backbone, as PT (``prompt_tuning``), laid out in a
task format (``replicate.formats``) and, for the pre-trained variants, initialised from the
checkpoint of a pre-training run (``replicate.pretrain``, ``prompt: single``): the prompt
and the MRC head of that run are every seed's starting point (the harness keeps MP2's span
head for all methods, so the head learned upstream is transferred with the prompt, as for
MP2). The seeds then differ in their few-shot draws and batch order alone.

Registered variants (the row names of PPT Tables 4-5 and MP2 Table 3):

- ``pt-hybrid`` "Hybrid PT": PT inside PPT's hard prompt for the task's format (PPT
  Appendix Table 1); vocabulary init.
- ``pt-mc`` "PT (MC)": PT in the MCC layout (option letters), no pre-training (PPT Table 5).
- ``ppt`` "PPT": each task, in the pattern and verbalizer of its format's pre-training task
  (``template: pretraining``, PPT §3.2.1), starts from the prompt pre-trained for its format: SPC tasks
  from ``pretraining_spc``, MCC tasks from ``pretraining_mcc``, SSC tasks from
  ``pretraining_ssc``. SSC pre-training needs a sentiment annotator's pseudo-labels (PPT
  §3.2.3: a RoBERTa-base fine-tuned on 5-class sentiment); none ships here, so without a
  ``pretraining_ssc`` the method has no cells for SSC tasks (``declines``: their table
  cells say n/a).
- ``ppt-hybrid`` "Hybrid PPT": ``ppt`` inside the hard prompts.
- ``ppt-unified`` "Unified PPT" (MP2 Table 3's "PPT", MP2 A.1): every task in the MCC layout,
  from the prompt pre-trained on the unified 2-16-option task.
Vanilla PT (PPT Table 4's "Vanilla PT") is ``pt`` itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

from ..errors import ConfigError
from ..formats import LAYOUTS, TEMPLATES, in_format, ppt_format
from ..model import InputPrompt, PromptedMRC
from .base import check_fields, register_method, require_pretraining
from .prompt_tuning import PromptTuning, PromptTuningConfig


@dataclass
class PretrainedPromptConfig(PromptTuningConfig):
    """A soft prompt in a task format, optionally from a pre-trained prompt (the shared
    fields: see TrainConfig, PromptConfig).

    layout: "options" (MRC: the task's own options) or "mcc" (option letters, PPT §3.3);
        per-format PPT always lays multiple-choice tasks out in letters (PPT eq 4).
    template: "task" (the task's registered template), "hybrid" (PPT Appendix Table 1) or
        "pretraining" (the pattern of the task format's pre-training task, PPT §3.2.1: per-format
        PPT's default, as the authors' BoolQDatasets.py:22-27 lays BoolQ out with a prompt as
        the NSP pre-training lays out its pairs; an SPC task's label words must be the SPC
        verbalizer's). The hybrid and pre-training patterns list a multiple-choice task's
        candidates in letters whatever the layout.
    pretraining: the pre-training run (config ``pretraining:``, ``prompt: single``) whose
        prompt and head every task starts from; null: none (vocabulary init as PT).
    pretraining_spc, pretraining_mcc, pretraining_ssc: per-format PPT (``pretraining``
        null): the run each format's tasks start from; the method has no cells for a task of
        a format without one (``declines``).
    transfer_head: start the MRC head from the pre-training's (True) or from a fresh draw.
    lr: PPT Appendix C.2 searches [5e-3, 1e-2, 2e-2, 5e-2]; MP2 A.1's PPT and SPoT
        pre-trainings use 3e-2 and 3e-3 (their downstream rates are not given).
    """

    layout: str = "options"
    template: str = "task"
    pretraining: Optional[str] = None
    pretraining_spc: Optional[str] = None
    pretraining_mcc: Optional[str] = None
    pretraining_ssc: Optional[str] = None
    transfer_head: bool = True

    def validate(self) -> None:
        super().validate()
        check_fields(self, choices={"layout": LAYOUTS, "template": TEMPLATES})


class FormattedPrompt(PromptTuning):
    """PT in a task format, from a pre-trained prompt when the config names one."""

    config_cls = PretrainedPromptConfig
    per_format = False  # True: the pre-training depends on the task's PPT format
    prompt_encoders = ("none",)  # its prompt is read and written as rows (pre-training, SPoT's retrieval)

    def __init__(self, name: str, label: str, defaults: Dict, rows: tuple = (), per_format: bool = False):
        self.name, self.paper_label, self.defaults, self.rows = name, label, defaults, rows
        self.per_format = per_format

    def layout_of(self, cfg: PretrainedPromptConfig, task) -> str:
        """Per-format PPT lays MCC tasks out in option letters (PPT eq 4) and the others in
        their own options (eqs 3, 5: label words); the other variants use ``cfg.layout``."""
        return "mcc" if self.per_format and ppt_format(task) == "mcc" else cfg.layout

    def task_view(self, task, cfg: PretrainedPromptConfig):
        return in_format(task, self.layout_of(cfg, task), cfg.template)

    def declines(self, cfg: PretrainedPromptConfig, task) -> Optional[str]:
        """Per-format PPT has no cells for a task whose format has no pre-trained prompt; the
        variants without a pre-training (Hybrid PT, PT (MC)) none for extractive tasks, where
        they would be PT itself. Unified PPT and SPoT take every task (MP2 Table 3 reports
        PPT on its MRC tasks too)."""
        fmt = ppt_format(task)
        if not self.per_format:
            return "extractive tasks have no PPT format" if fmt is None and cfg.pretraining is None else None
        if fmt is not None and getattr(cfg, f"pretraining_{fmt}") is not None:
            return None
        return ("extractive tasks have no PPT format" if fmt is None else
                "SSC pre-training needs pseudo-labels from a sentiment annotator, which this harness does not build"
                if fmt == "ssc" else f"methods/{self.name}/pretraining_{fmt} is not set")

    def pretraining(self, cfg: PretrainedPromptConfig, task=None) -> Optional[str]:
        if not self.per_format:
            return cfg.pretraining
        if task is None:
            return None
        why = self.declines(cfg, task)
        if why:
            raise ConfigError(f"method {self.name}: task {task.name} has no pre-trained prompt: {why} "
                              "(docs/methods/ppt.md)")
        return getattr(cfg, f"pretraining_{ppt_format(task)}")

    def check_pretraining(self, cfg: PretrainedPromptConfig, name: str, pretrain_cfg) -> None:
        layout = "mcc" if self.per_format and name == cfg.pretraining_mcc else cfg.layout
        require_pretraining(self.name, name, pretrain_cfg, prompt="single", layout=layout,
                            prompt_length=cfg.prompt_length)

    def build(self, backbone, spec, tokenizer, cfg: PretrainedPromptConfig, seeds: List[int], init_tokens=None,
              pretrained=None) -> PromptedMRC:
        if pretrained is None:
            return super().build(backbone, spec, tokenizer, cfg, seeds, init_tokens)
        prompt = pretrained.get("prompt")
        if prompt is None or prompt.dim() != 2:
            raise ConfigError(f"{self.name}: the pre-training it starts from holds no single prompt "
                              "(pretraining prompt: single)")
        if tuple(prompt.shape) != (cfg.prompt_length, spec.d_model):
            raise ConfigError(f"{self.name}: the pre-trained prompt is {tuple(prompt.shape)} (length, d); the "
                              f"method's config needs ({cfg.prompt_length}, {spec.d_model})")
        from .common import pretrained_span_head, span_head

        backbone.requires_grad_(False)
        n = len(seeds)
        head = pretrained_span_head(pretrained["head"], n) if cfg.transfer_head else span_head(spec.d_model, seeds)
        return PromptedMRC(backbone, spec, head, InputPrompt(prompt.float().unsqueeze(0).repeat(n, 1, 1)))


register_method(FormattedPrompt("pt-hybrid", "Hybrid PT", {"template": "hybrid"}))
register_method(FormattedPrompt("pt-mc", "PT (MC)", {"layout": "mcc"}))
register_method(FormattedPrompt("ppt", "PPT", {"template": "pretraining", "pretraining_spc": "ppt-spc",
                                               "pretraining_mcc": "ppt-mcc"}, per_format=True))
register_method(FormattedPrompt("ppt-hybrid", "Hybrid PPT", {"template": "hybrid", "pretraining_spc": "ppt-spc",
                                                             "pretraining_mcc": "ppt-mcc"}, per_format=True))
register_method(FormattedPrompt("ppt-unified", "Unified PPT", {"layout": "mcc", "pretraining": "ppt-unified"}))
