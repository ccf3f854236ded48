"""MP2 with gradient descent (Sun et al. 2022): modular prompts pre-trained on upstream tasks,
then two-stage tuning on the downstream task.

The pre-trained checkpoint (``replicate.pretrain``) holds K modular prompts per prompted
layer (p_k = A z_k) and the MRC head. Downstream, each seed gets its own copy of the K
prompts (z A, materialised as MPMP does, ``Deep/downstream_run.py:96``), of the head
(``:101``), and a fresh router per layer drawn from U(-r, r) (``Deep/modeling_bert.py:549``):

- stage I (``stage1_epochs``): only the routers train (MP2 §3.4; lr ``router_lr``);
- stage II (the remaining epochs): the routers are frozen and the selected prompts train at
  ``lr``, with the MRC head at ``head_lr`` (MPMP trains ``qa_outputs.weight`` in the
  prompts' optimiser, ``Deep/downstream_run.py:102-110``).
``stage1_epochs == epochs`` is stage I alone (the black-box paper rows "Router-only" tune
only this stage). Every seed's router, prompts and head carry the seed axis, so many seeds
tune over one frozen backbone. The tested checkpoint is the best on dev over both stages
(MPMP ``Deep/trainer.py:353-366``); the result also records stage I's best and its test
score, i.e. what stage I alone gives.

Registered variants (MP2 Table 3 rows and Table 5's ablation):
``mp2-shallow`` (pre-trained without FSL, the paper's choice, Appendix B), ``mp2-deep``
(with FSL), ``mp2-shallow-w-fsl`` and ``mp2-deep-wo-fsl``; and ``mp2-shallow-eq1`` /
``mp2-deep-eq1``, the paper's binary router (eq 1) instead of MPMP's sigmoid / sum, each
from a pre-training of that form (rows of their own, under the row they vary). Table 5's other two rows,
"w/o FSL" under Shallow and "w/ FSL" under Deep, are exactly ``mp2-shallow`` and
``mp2-deep``: the tables read those cells for them (``rows``), nothing is trained twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

import torch

from ..errors import ConfigError
from ..model import ROUTER_COMBINES, PromptBank, PromptedMRC, RoutedPrompt
from .base import Method, TrainConfig, check_fields, register_method, require_pretraining
from .common import meta_span_head, pretrained_span_head, seed_generator

DEPTHS = ("shallow", "deep")


@dataclass
class MP2Config(TrainConfig):
    """MP2's downstream two-stage tuning (the shared fields: see TrainConfig).

    depth: "shallow" (one router over K prompts at the input) or "deep" (a router and K
        prompts at every layer); must match the pre-training's.
    pretraining: the name of the pre-training run (config ``pretraining:``) whose modular
        prompts and MRC head this starts from.
    prompt_length: soft tokens per modular prompt (MP2: 50); must match the pre-training's.
    n_prompts: modular prompts per layer, K (MP2: 8); must match the pre-training's.
    epochs: both stages together (MP2 A.2: 1,000).
    stage1_epochs: the first ``stage1_epochs`` train only the routers (MP2 A.2: 500); the
        rest train the selected prompts. Equal to ``epochs``: stage I alone.
    router_lr: stage I's learning rate (MP2 A.2: shallow 1e-2, deep 3e-3).
    lr: stage II's learning rate of the prompts (MP2 A.2: shallow 3e-4, deep 2e-5).
    head_lr: stage II's learning rate of the MRC head (MPMP: the prompts' optimiser, so the
        same as lr).
    router_init_range: routers start from U(-r, r) (MPMP: 1e-3).
    combine: the router's form, which must be the pre-training's (checked at config time):
        "mpmp" (sigmoid normalised by its sum: what produced MP2 Table 3, MPMP
        ``Deep/modeling_bert.py:587-592``) or "paper" (eq 1: sum / K, binarised router at
        inference and in stage II; the ``-eq1`` ablation variants), see
        ``model.inference_weights``.
    sample_router: while the router trains, weight the prompts by a relaxed-Bernoulli
        sample (MP2 eqs 2-5). MPMP's downstream trainer runs the model in eval mode
        (``Deep/trainer.py:331-334``), so it never samples downstream: False reproduces it.
    temperature: the relaxed Bernoulli's temperature (MPMP: 1.0).
    """

    depth: str = "shallow"
    pretraining: str = "mp2-shallow"
    prompt_length: int = 50
    n_prompts: int = 8
    epochs: int = 1000
    stage1_epochs: int = 500
    router_lr: float = 1e-2
    lr: float = 3e-4
    head_lr: float = 3e-4
    router_init_range: float = 1e-3
    combine: str = "mpmp"
    sample_router: bool = False
    temperature: float = 1.0

    def validate(self) -> None:
        super().validate()
        check_fields(self, choices={"depth": DEPTHS, "combine": ROUTER_COMBINES},
                     at_least_one=("prompt_length", "n_prompts", "stage1_epochs"),
                     positive=("router_lr", "router_init_range", "temperature"))
        if self.stage1_epochs > self.epochs:
            raise ConfigError(f"stage1_epochs: {self.stage1_epochs} is more than epochs ({self.epochs})")
        if not self.pretraining:
            raise ConfigError("pretraining: name the pre-training run this starts from")
        if self.combine == "paper" and not self.sample_router:
            raise ConfigError("sample_router: combine 'paper' binarises the router unless it samples, so stage I "
                              "would get no gradient; set sample_router: true (or combine: mpmp)")


def n_layers_of(depth: str, spec) -> int:
    """Prompted layers: the input layer alone, or every layer (MP2 §4.2: CPT's 24)."""
    return 1 if depth == "shallow" else spec.n_layers


class MP2(Method):
    config_cls = MP2Config
    paradigm = "gradient"

    def __init__(self, name: str, label: str, defaults: Dict, rows: tuple = (), ablation_of: Optional[str] = None):
        self.name, self.paper_label, self.defaults, self.rows = name, label, defaults, rows
        self.ablation_of = ablation_of

    def prompt_length(self, cfg: MP2Config) -> int:
        return cfg.prompt_length

    def pretraining(self, cfg: MP2Config, task=None) -> Optional[str]:
        return cfg.pretraining

    def check_pretraining(self, cfg: MP2Config, name: str, pretrain_cfg) -> None:
        require_pretraining(self.name, name, pretrain_cfg, prompt=cfg.depth, prompt_length=cfg.prompt_length,
                            n_prompts=cfg.n_prompts, combine=cfg.combine)

    def build(self, backbone, spec, tokenizer, cfg: MP2Config, seeds: List[int], init_tokens=None,
              pretrained=None) -> PromptedMRC:
        if pretrained is None:
            raise ValueError(f"{self.name} starts from pre-trained modular prompts: give the checkpoint of "
                             f"pre-training {cfg.pretraining!r}")
        depth = n_layers_of(cfg.depth, spec)
        bank = pretrained["prompts"]  # (depth, K, length, d)
        want = (depth, cfg.n_prompts, cfg.prompt_length, spec.d_model)
        if tuple(bank.shape) != want:
            raise ConfigError(f"{self.name}: pre-training {cfg.pretraining!r} has modular prompts of shape "
                              f"{tuple(bank.shape)} (layers, K, length, d); the method's config needs {want}")
        backbone.requires_grad_(False)
        routers = torch.stack([(torch.rand(depth, cfg.n_prompts, generator=seed_generator(s, "router")) * 2 - 1)
                               * cfg.router_init_range for s in seeds])
        prompt = RoutedPrompt(routers, PromptBank(bank.float().unsqueeze(0).repeat(len(seeds), 1, 1, 1, 1)),
                              cfg.combine, cfg.temperature, cfg.sample_router,
                              [seed_generator(s, "router-noise") for s in seeds])
        head = pretrained_span_head(pretrained["head"], len(seeds))
        return PromptedMRC(backbone, spec, head, prompt)

    def stages(self, model, cfg: MP2Config):
        """Stage I trains the routers alone; stage II the prompts and the head, with the
        routers frozen (the trainer turns their gradient off, so they take their inference
        form: ``RoutedPrompt.weights``)."""
        from ..train import Stage

        out = [Stage("I: router", cfg.stage1_epochs, [{"params": [model.prompt.router], "lr": cfg.router_lr}])]
        if cfg.epochs > cfg.stage1_epochs:
            out.append(Stage("II: prompts", cfg.epochs - cfg.stage1_epochs,
                             [{"params": [model.prompt.bank.weight], "lr": cfg.lr},
                              {"params": [model.head.weight], "lr": cfg.head_lr}]))
        return out

    def prompt_modules(self, spec, cfg: MP2Config, n_seeds=1):
        depth = n_layers_of(cfg.depth, spec)
        bank = PromptBank(torch.empty(n_seeds, depth, cfg.n_prompts, cfg.prompt_length, spec.d_model, device="meta"))
        router = RoutedPrompt(torch.empty(n_seeds, depth, cfg.n_prompts, device="meta"), torch.nn.Identity(),
                              cfg.combine, cfg.temperature, cfg.sample_router, [])
        return {"router": router, "prompt": bank, "head": meta_span_head(spec.d_model, n_seeds)}

    def stage_counts(self, spec, cfg: MP2Config) -> Dict[str, int]:
        """Tunable parameters per stage of one seed (MP2 Fig 6a: [K + D, K + KD] per layer):
        stage I the routers; stage II between one selected prompt per layer and all K."""
        depth = n_layers_of(cfg.depth, spec)
        one = cfg.prompt_length * spec.d_model
        return {"stage1_routers": depth * cfg.n_prompts, "stage2_one_prompt_per_layer": depth * one,
                "stage2_all_prompts": depth * cfg.n_prompts * one}


SHALLOW = {"depth": "shallow", "pretraining": "mp2-shallow", "router_lr": 1e-2, "lr": 3e-4, "head_lr": 3e-4}
DEEP = {"depth": "deep", "pretraining": "mp2-deep", "router_lr": 3e-3, "lr": 2e-5, "head_lr": 2e-5}

register_method(MP2("mp2-shallow", "Shallow MP2", SHALLOW, rows=("mp2-shallow-wo-fsl",)))
register_method(MP2("mp2-deep", "Deep MP2", DEEP, rows=("mp2-deep-w-fsl",)))
register_method(MP2("mp2-shallow-w-fsl", "Shallow MP2 w/ FSL", {**SHALLOW, "pretraining": "mp2-shallow-fsl"}))
register_method(MP2("mp2-deep-wo-fsl", "Deep MP2 w/o FSL", {**DEEP, "pretraining": "mp2-deep-nofsl"}))
# The paper's own router form (MP2 §3.2: eq 1 with a binary router at inference, relaxed-
# Bernoulli samples while the router trains), from pre-trainings of that form: an ablation of
# the form that produced MP2 Table 3 (MPMP's), in its own rows below the row it varies.
EQ1 = {"combine": "paper", "sample_router": True}
register_method(MP2("mp2-shallow-eq1", "Shallow MP2, eq 1 router", {**SHALLOW, **EQ1, "pretraining": "mp2-shallow-eq1"},
                    ablation_of="mp2-shallow"))
register_method(MP2("mp2-deep-eq1", "Deep MP2, eq 1 router", {**DEEP, **EQ1, "pretraining": "mp2-deep-eq1"},
                    ablation_of="mp2-deep"))
