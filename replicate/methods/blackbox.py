"""Black-box tuning (forward passes only): BBT, BBTv2 and MP2's black-box two-stage tuning.

- ``bbt`` (Sun et al. 2022c): one intrinsic vector z (``intrinsic_dim``) at the input,
  prompt = A z with A fixed, random normal, std = alpha * std_hat / (sqrt(d) * sigma),
  std_hat the std of the backbone's word-embedding matrix (txsun1997/Black-Box-Tuning
  ``bbt.py:266-291``); CMA-ES from mean 0 with step ``sigma`` (``bbt.py:710-718``).
- ``bbtv2`` (Sun et al. 2022a): an intrinsic vector at every layer, each with its own A; A_0
  as BBT's, A_l (l >= 1) from the std of the hidden states entering layer l on the seed's
  training set, clipped five times to mean +- 3 std (``deepbbt.py:424-474``); divide and
  conquer over the layers (``deepbbt.py:699-721``).
- ``mp2-shallow-black-box`` / ``mp2-deep-black-box`` (MP2 §3.4, A.2, Fig 6b): the
  pre-trained z and A of the MP2 pre-training; stage I Bayesian optimisation (UCB) of the
  router(s); stage II CMA-ES of the pre-fused intrinsic prompt with A frozen (shallow: one
  strategy; deep: divide and conquer, ``sigma`` at the embedding layer and ``sigma_deep`` at
  the others). Their stage I alone is MP2 Table 3's "Router-only" rows (``row_views``).

The fitness is the training loss of the method's formulation (``formulation.py``) over the
seed's whole few-shot training set. BBT and BBTv2 run Black-Box-Tuning's CPT formulation
(``formulation: mlm``): a cloze sentence with one [MASK], cross entropy over the label words'
masked-LM scores (``bbt.py:375-402``), the backbone's own tied word embeddings as the
masked-LM head; they start from the backbone alone (no pre-training, no span head) and have
no cells for extractive tasks (``declines``), as MP2 Table 3 prints "–" there. MP2's
black-box methods run the MRC formulation (MPMP ``Shallow/bbt.py:221``: its span loss,
``mrc.example_losses``) with the span head of their pre-training. No gradient is taken and
no head is trained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional

import torch

from ..blackbox import BlackBoxTuner, IntrinsicSpace, OffsetSearch, PopulationPrompt, RouterSearch, RowSpanHead
from ..errors import ConfigError
from ..formulation import TiedWordScores, formulation

BLACK_BOX_FORMULATIONS = ("mrc", "mlm")  # seq2seq reads answers by decoding: no black-box method of the papers uses it
from ..model import ROUTER_COMBINES, PromptedMRC
from .base import Method, check_fields, register_method, require_pretraining
from .common import HEAD_INIT_STD, seed_generator

DEPTHS = ("shallow", "deep")


@dataclass
class BlackBoxConfig:
    """A forward-only search of intrinsic prompts (defaults: the papers' CPT-large setup).

    depth: "shallow" (the input layer) or "deep" (every layer the backbone takes a prompt at).
    prompt_length: soft tokens per prompted layer (MP2 and BBT: 50).
    intrinsic_dim: d, the searched dimensions per layer (BBT: 500; MP2 Table 3 counts 300
        for BBT on CPT-large, and MP2's z has 300).
    budget: model forward calls per seed, all stages together (one call = one candidate over
        the whole few-shot training set; BBT, BBTv2 and MP2: 8,000).
    popsize: CMA-ES population (BBT, BBTv2, MPMP: 20).
    sigma: CMA-ES initial step size at the input layer (BBT: 1).
    sigma_deep: the step size at the other layers (None = sigma; MP2 A.2 deep: 1e-2).
    alpha: the random projection's scale factor (BBT: 1; BBT's std formula above).
    bound: keep every searched entry in [-bound, bound]; 0 = unbounded (BBT: 0).
    eval_every: score the best training candidate on dev every this many calls (BBT: 100).
    pretraining: the pre-training whose span head, z and A this uses (MP2's black-box
        methods); BBT and BBTv2 take none (config check refuses one).
    formulation: "mlm" (BBT and BBTv2: Black-Box-Tuning's label words at a [MASK], read by
        the backbone's tied-embedding masked-LM head) or "mrc" (MP2's span formulation; for
        BBT/BBTv2, a frozen random span head drawn from the seed). See ``formulation.py``.
    max_length, eval_batch_size, precision, dropout: as for gradient methods (TrainConfig);
        the backbone runs in eval mode, so dropout is never drawn.
    """

    depth: str = "shallow"
    prompt_length: int = 50
    intrinsic_dim: int = 300
    budget: int = 8000
    popsize: int = 20
    sigma: float = 1.0
    sigma_deep: Optional[float] = None
    alpha: float = 1.0
    bound: float = 0.0
    eval_every: int = 100
    pretraining: Optional[str] = None
    formulation: str = "mrc"
    max_length: int = 128
    eval_batch_size: int = 64
    precision: str = "fp32"
    dropout: Optional[float] = None

    def validate(self) -> None:
        check_fields(self, choices={"depth": DEPTHS, "precision": ("fp32", "bf16"), "formulation": BLACK_BOX_FORMULATIONS},
                     at_least_one=("prompt_length", "intrinsic_dim", "budget", "eval_every", "max_length",
                                   "eval_batch_size"),
                     positive=("sigma", "sigma_deep", "alpha"), non_negative=("bound",))
        if self.popsize < 4:  # pycma's step-size adaptation fails on smaller populations
            raise ConfigError(f"popsize: CMA-ES needs a population of at least 4, not {self.popsize}")
        if self.formulation == "mlm" and self.pretraining:
            raise ConfigError(f"pretraining: the mlm formulation reads label words with the backbone's own "
                              f"masked-LM head and starts from no pre-training, not {self.pretraining!r}")

    def sigmas(self, depth: int) -> List[float]:
        deep = self.sigma if self.sigma_deep is None else self.sigma_deep
        return [self.sigma] + [deep] * (depth - 1)


@dataclass
class MP2BlackBoxConfig(BlackBoxConfig):
    """MP2's black-box two-stage tuning (MP2 A.2; MPMP ``Shallow/bbt.py``, ``Deep/deepbbt.py``).

    router_budget: stage I's forward calls, one per Bayesian-optimisation step (MP2 A.2:
        shallow 200, deep 100); ``budget`` counts both stages.
    router_bound: each router logit is searched in [-router_bound, router_bound] (MPMP: 5).
    kappa: UCB's exploration weight (MP2 A.2: 2).
    init_points: random routers before UCB takes over (MPMP: 20).
    router_eval_every: stage I's dev-check interval in calls (MPMP: 10).
    n_prompts: modular prompts per layer, K (MP2: 8).
    combine: how a router weighs the pre-trained z_k (``model.inference_weights``): "mpmp",
        sigmoid / sum (MPMP ``Shallow/bbt.py:314-315``, ``Deep/deepbbt.py:308-309``), or
        "paper", eq 1's binary router / K; must be the pre-training's (checked at config time).
    """

    router_budget: int = 200
    router_bound: float = 5.0
    kappa: float = 2.0
    init_points: int = 20
    router_eval_every: int = 10
    n_prompts: int = 8
    combine: str = "mpmp"
    pretraining: Optional[str] = "mp2-shallow"

    def validate(self) -> None:
        super().validate()
        check_fields(self, choices={"combine": ROUTER_COMBINES},
                     at_least_one=("router_budget", "router_eval_every", "n_prompts"),
                     positive=("router_bound",), non_negative=("kappa", "init_points"))
        if self.router_budget > self.budget:
            raise ConfigError(f"router_budget: {self.router_budget} is more than budget ({self.budget})")
        if not self.pretraining:
            raise ConfigError("pretraining: name the MP2 pre-training whose z, A and head this starts from")


def n_layers_of(depth: str, spec) -> int:
    return 1 if depth == "shallow" else spec.n_layers


def clipped_std(values: torch.Tensor, rounds: int = 5) -> float:
    """The std of ``values`` after clipping them ``rounds`` times to mean +- 3 std, the
    statistics recomputed each time (BBTv2 ``deepbbt.py:449-461``)."""
    v = values.double().flatten()
    for _ in range(rounds):
        mu, std = v.mean(), v.std()
        v = v.clamp(mu - 3 * std, mu + 3 * std)
    return float(v.std())


class BlackBox(Method):
    """A registered black-box method; ``Method.trainer`` picks ``BlackBoxTuner``."""

    config_cls = BlackBoxConfig
    paradigm = "black-box"
    formulations = BLACK_BOX_FORMULATIONS
    trainer = BlackBoxTuner
    progress_unit = "forward call"
    # BBT and BBTv2 are MP2's baselines: they start from the backbone alone. A pre-training
    # (MP2's span head) would carry MP2's multi-task pre-training into the rows MP2 is compared with.
    reads_pretraining = False

    def __init__(self, name: str, label: str, defaults: Dict, rows: tuple = (), row_views: Optional[Dict] = None):
        self.name, self.paper_label, self.defaults, self.rows = name, label, defaults, rows
        self.row_views = row_views or {}

    def prompt_length(self, cfg) -> int:
        return cfg.prompt_length

    def make_config(self, overrides=None):
        cfg = super().make_config(overrides)
        if cfg.pretraining and not self.reads_pretraining:
            raise ConfigError(f"config methods/{self.name}/pretraining: {self.paper_label} starts from the backbone "
                              f"alone; it may not read pre-training {cfg.pretraining!r} (set pretraining: null)")
        return cfg

    def pretraining(self, cfg, task=None) -> Optional[str]:
        return cfg.pretraining

    def formulation(self, cfg, task):
        return formulation(cfg.formulation, task)

    def declines(self, cfg, task) -> Optional[str]:
        from ..tasks.cloze import cloze_for

        if cfg.formulation == "mlm" and cloze_for(task) is None:
            return (f"the mlm formulation has no cloze form for {task.kind} task {task.name} "
                    "(MP2 Table 3: '–' for BBT and BBTv2 on its extractive tasks)")
        return None

    def encoder(self, tokenizer, task, cfg, spec, max_length: Optional[int] = None):
        return self.formulation(cfg, task).encoder(tokenizer, max_length or cfg.max_length, self.prompt_length(cfg),
                                                   spec)

    def check_pretraining(self, cfg, name: str, pretrain_cfg) -> None:
        require_pretraining(self.name, name, pretrain_cfg, prompt_length=cfg.prompt_length)

    def build(self, backbone, spec, tokenizer, cfg, seeds: List[int], init_tokens=None, pretrained=None):
        backbone.requires_grad_(False)
        prompt = PopulationPrompt(n_layers_of(cfg.depth, spec))
        if cfg.formulation == "mlm":  # the backbone's own tied-embedding masked-LM head; no span head
            if pretrained is not None:
                raise ValueError(f"{self.name}: the mlm formulation reads no pre-training")
            model = PromptedMRC(backbone, spec, TiedWordScores(backbone.get_input_embeddings()), prompt)
            model.pretrained = None
            return model
        if pretrained is not None:
            head = pretrained["head"].float().unsqueeze(0).repeat(len(seeds), 1, 1)
        else:
            head = torch.stack([torch.randn(spec.d_model, 2, generator=seed_generator(s, "head")) * HEAD_INIT_STD
                                for s in seeds])
        model = PromptedMRC(backbone, spec, RowSpanHead(head), prompt)
        model.pretrained = pretrained
        return model

    def spaces(self, tuner) -> Dict[int, IntrinsicSpace]:
        """Each seed's projections: fixed random normal ones (BBT's recipe, per layer)."""
        cfg, spec_d = tuner.cfg, tuner.model.backbone.config.hidden_size
        depth = tuner.model.prompt.depth
        stds = self._feature_stds(tuner, depth)
        sigmas = cfg.sigmas(depth)
        out = {}
        for s in range(tuner.n):
            seed = tuner.data[s].seed
            A = torch.stack([torch.randn(cfg.intrinsic_dim, cfg.prompt_length * spec_d,
                                         generator=seed_generator(seed, f"projection/{layer}"))
                             * (cfg.alpha * stds[s][layer] / (math.sqrt(cfg.intrinsic_dim) * sigmas[layer]))
                             for layer in range(depth)])
            out[s] = IntrinsicSpace(A.to(tuner.evaluator.device), torch.zeros(depth, cfg.intrinsic_dim),
                                    cfg.prompt_length, spec_d)
        return out

    def _feature_stds(self, tuner, depth: int) -> List[List[float]]:
        """Per seed, the std_hat of each layer's projection: the word embeddings' (layer 0, BBT
        ``bbt.py:270-285``) and, for deeper layers, that of the hidden states entering the
        layer on the seed's training set with no prompt (BBTv2), over real tokens only (BBTv2
        counts padding too, which would make A depend on how the set is batched)."""
        emb = float(tuner.model.backbone.get_input_embeddings().weight.detach().double().std())
        if depth == 1:
            return [[emb] for _ in range(tuner.n)]
        out = []
        backbone = tuner.model.backbone
        with torch.no_grad():
            for s in range(tuner.n):
                batch = tuner.evaluator.formulation.collate(tuner.data[s].train, [0] * len(tuner.data[s].train),
                                                            tuner.evaluator.pad_id, tuner.evaluator.device)
                kwargs = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask,
                          "output_hidden_states": True}
                if tuner.model.arch != "t5":
                    kwargs["token_type_ids"] = batch.token_type_ids
                states = backbone(**kwargs).hidden_states
                real = batch.attention_mask.bool()
                out.append([emb] + [clipped_std(states[layer][real]) for layer in range(1, depth)])
        return out

    def prompt_budget(self, cfg) -> int:
        """Forward calls left for CMA-ES."""
        return cfg.budget

    def check_backbone(self, cfg, spec) -> None:
        depth = n_layers_of(cfg.depth, spec)
        if self.prompt_budget(cfg) and self.prompt_budget(cfg) < cfg.popsize * depth:
            raise ConfigError(f"config methods/{self.name}/budget: CMA-ES gets {self.prompt_budget(cfg)} calls, less than "
                              f"one generation of {cfg.popsize} for each of the {depth} prompted layers of {spec.name}")

    def search_stages(self, tuner):
        cfg = tuner.cfg
        tuner.spaces.update(self.spaces(tuner))
        depth = tuner.model.prompt.depth
        return [OffsetSearch(cfg.budget, cfg.popsize, cfg.sigmas(depth), cfg.bound, cfg.eval_every, name="CMA-ES")]

    def trainable_parameters(self, spec, cfg) -> Dict[str, int]:
        """Searched dimensions of one seed (no head is tuned)."""
        return {"prompt": n_layers_of(cfg.depth, spec) * cfg.intrinsic_dim, "head": 0}

    def view_parameters(self, view: str, spec, cfg) -> int:
        return self.trainable_parameters(spec, cfg)["prompt"]


class MP2BlackBox(BlackBox):
    config_cls = MP2BlackBoxConfig
    reads_pretraining = True

    def prompt_budget(self, cfg) -> int:
        return cfg.budget - cfg.router_budget  # 0: stage I alone

    def check_pretraining(self, cfg, name: str, pretrain_cfg) -> None:
        require_pretraining(self.name, name, pretrain_cfg, prompt=cfg.depth, prompt_length=cfg.prompt_length,
                            n_prompts=cfg.n_prompts, intrinsic_dim=cfg.intrinsic_dim, combine=cfg.combine)

    def build(self, backbone, spec, tokenizer, cfg, seeds: List[int], init_tokens=None, pretrained=None):
        if pretrained is None or "z" not in pretrained:
            raise ValueError(f"{self.name} starts from pre-trained modular prompts: give the checkpoint of "
                             f"pre-training {cfg.pretraining!r}")
        depth = n_layers_of(cfg.depth, spec)
        want = (depth, cfg.n_prompts, cfg.intrinsic_dim)
        if tuple(pretrained["z"].shape) != want:
            raise ConfigError(f"{self.name}: pre-training {cfg.pretraining!r} has z of shape "
                              f"{tuple(pretrained['z'].shape)} (layers, K, intrinsic_dim); the config needs {want}")
        return super().build(backbone, spec, tokenizer, cfg, seeds, init_tokens, pretrained)

    def search_stages(self, tuner):
        cfg, pre = tuner.cfg, tuner.model.pretrained
        A = pre["A"].float().to(tuner.evaluator.device)  # (depth, d, length * d_model), frozen, shared
        depth, d = pre["z"].shape[0], pre["z"].shape[2]
        for s in range(tuner.n):
            tuner.spaces[s] = IntrinsicSpace(A, torch.zeros(depth, d), cfg.prompt_length, A.shape[2] // cfg.prompt_length)
        stages = [RouterSearch(pre["z"], cfg.combine, cfg.router_budget, cfg.router_bound, cfg.kappa,
                               cfg.init_points, cfg.router_eval_every)]
        if cfg.budget > cfg.router_budget:
            stages.append(OffsetSearch(cfg.budget - cfg.router_budget, cfg.popsize, cfg.sigmas(depth), cfg.bound,
                                       cfg.eval_every, name="II: prompt", from_best=True))
        return stages

    def trainable_parameters(self, spec, cfg) -> Dict[str, int]:
        """Searched dimensions of one seed over both stages (MP2 Fig 6b: K + d per layer)."""
        return {"prompt": n_layers_of(cfg.depth, spec) * (cfg.n_prompts + cfg.intrinsic_dim), "head": 0}

    def view_parameters(self, view: str, spec, cfg) -> int:
        if view == "stage1":
            return n_layers_of(cfg.depth, spec) * cfg.n_prompts  # the routers alone (MP2 Table 3: 8 and 192)
        return self.trainable_parameters(spec, cfg)["prompt"]


# BBT and BBTv2 as Black-Box-Tuning runs them on CPT: label words at a [MASK], no pre-training
BBT = {"depth": "shallow", "intrinsic_dim": 300, "pretraining": None, "formulation": "mlm"}
BBTV2 = {"depth": "deep", "intrinsic_dim": 300, "pretraining": None, "formulation": "mlm"}
# MP2 A.2; the deep step sizes and bound: MP2 A.2 states 5e-2 / 1e-2 (MPMP's Deep/deepbbt.py:
# 0.5 / 0.1) and no bound (MPMP: 5), see docs/methods/mp2.md.
MP2_SHALLOW = {"depth": "shallow", "pretraining": "mp2-shallow", "router_budget": 200, "sigma": 0.1}
MP2_DEEP = {"depth": "deep", "pretraining": "mp2-deep", "router_budget": 100, "sigma": 5e-2, "sigma_deep": 1e-2,
            "bound": 5.0}

register_method(BlackBox("bbt", "BBT", BBT))
register_method(BlackBox("bbtv2", "BBTv2", BBTV2))
register_method(MP2BlackBox("mp2-shallow-black-box", "Shallow MP2 (black-box)", MP2_SHALLOW, rows=("mp2-shallow",),
                            row_views={"mp2-shallow-router-only": "stage1", "mp2-shallow-stage1-only": "stage1"}))
register_method(MP2BlackBox("mp2-deep-black-box", "Deep MP2 (black-box)", MP2_DEEP, rows=("mp2-deep",),
                            row_views={"mp2-deep-router-only": "stage1", "mp2-deep-stage1-only": "stage1"}))
