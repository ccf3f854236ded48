"""Model tuning: every backbone weight (and, in MP2's MRC formulation, the span head) is trained.
On T5 in the text-to-text formulation (``formulation: seq2seq``) the whole encoder-decoder
with its LM head trains, and there is no other head.

Seeds cannot share a backbone whose weights they change, so the trainer runs them one at a
time (``seed_batched = False``), each from the same pristine pretrained weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

from ..model import PromptedMRC, PromptedSeq2Seq
from .base import Method, TrainConfig, register_method
from .common import meta_span_head, span_head


@dataclass
class ModelTuningConfig(TrainConfig):
    """Model tuning: the shared fields (see TrainConfig) with its embedded defaults. MP2's
    code has no model-tuning script; ``train_mode`` defaults to True, as in ordinary
    fine-tuning (dropout on)."""

    epochs: int = 20
    train_mode: bool = True
    lr: float = 5e-5
    head_lr: float = 3e-3


class ModelTuning(Method):
    name = "model-tuning"
    config_cls = ModelTuningConfig
    seed_batched = False
    formulations = ("mrc", "seq2seq")
    paper_label = "Model Tuning"

    def build(self, backbone, spec, tokenizer, cfg, seeds: List[int], init_tokens=None, pretrained=None) -> PromptedMRC:
        if len(seeds) != 1:
            raise ValueError("model tuning trains one seed per backbone copy")
        backbone.requires_grad_(True)
        if self.seq2seq(cfg):
            return PromptedSeq2Seq(backbone)
        return PromptedMRC(backbone, spec, span_head(spec.d_model, seeds))

    def param_groups(self, model, cfg):
        groups = [{"params": list(model.backbone.parameters()), "lr": cfg.lr}]
        if getattr(model, "head", None) is not None:
            groups.append({"params": list(model.head.parameters()), "lr": cfg.head_lr})
        return groups

    def prompt_modules(self, spec, cfg, n_seeds=1):
        return {} if self.seq2seq(cfg) else {"head": meta_span_head(spec.d_model, n_seeds)}

    def trainable_parameters(self, spec, cfg):
        counts = super().trainable_parameters(spec, cfg)
        return {"backbone": spec.total_params or 0, **counts}


register_method(ModelTuning())
