"""ComPT (Pouramini & Faili): every task of a task set trained together, each task's prompt
composed from shared source prompts and its own private prompt (``composition.py``).

SSUM, MSUM and MCAT are the paper's three compositions (eq 5). One job trains a task set
(``Method.multi_task``: config ``task_sets``, the method's ``task_set``) for all seeds at
once (``multitask.py``), and writes one cell per (task, seed), so the tables read them as
any other cells. Where the released code (puraminy/ComPT at 4b99900f) departs from the
paper, the config has a field, the paper's reading by default (docs/methods/compt.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Sequence

import torch

from ..errors import ConfigError
from ..composition import COMPOSITIONS, WEIGHTS, ComposedPrompt, FrozenComposition, PromptEncoders, temperature_at
from .base import Method, TrainConfig, check_fields, register_method
from .common import linear_init, seed_generator, span_head

COMPT_INITS = ("uniform", "ordinal")
COMPT_ENCODERS = ("mlp", "none")


@dataclass
class ComPTConfig(TrainConfig):
    """ComPT's fields (the shared ones: TrainConfig). "Code" is puraminy/ComPT at 4b99900f.

    composition: "ssum", "msum" or "mcat" (paper eq 5; the code's ``wavg``, ``mwavg`` with
        ``add_target``, and ``cat``).
    task_set: the config's ``task_sets`` entry trained together; null: every grid task.
    n_sources: M, the shared source prompts (§5.1.1 sweeps 1-10; Fig 5 names 3 for MSUM and
        2 for MCAT and SSUM the best; Tables 3-4 print 3-10).
    prompt_length: m, tokens of each source prompt and of an SSUM/MSUM private prompt (§3.2:
        20; 10 for MCAT). MCAT's private prompt and target prompt have M x m tokens.
    weights: "learned" (the router, §2.3) or "constant" (1 / M: §5.1.3, Fig 5).
    lr: the source prompts' learning rate (§3.2: 0.05).
    private_lr: the private prompts' (§3.2: 0.02; the released configs leave it at 0.05).
    router_lr: the router's (§3.2: 0.1).
    temperature_start, temperature_end: the relaxed-Bernoulli temperature, annealed linearly
        over the whole run (§3.2: 5 to 1e-3).
    anneal_rate: null (the paper's whole-run anneal), or the code's rate per step from
        temperature_start, floored at temperature_end (its configs: 0.02, the floor at step 250).
    top_k: null (every kept source), or the code's ``num_target_prompts``: only the k highest
        scores among the kept sources are normalised (SL_cat.json keeps 4 of 8).
    private_in_pool: the code's private prompt, a member of the router's pool scaled by its
        normalised weight (``use_private_prompts``; SSUM and MSUM) instead of the paper's P_u.
    init: the source and private rows' initialisation: "uniform" U(-init_range, init_range)
        (the code's sources and privates, ``encoders.py:138-146``) or "ordinal" (row i =
        input-embedding row i, its target prompts').
    prompt_encoder: "mlp" (§3.2: Linear(d, h) -> GELU -> Linear(h, d), one per prompt) or
        "none". The code's default LSTM encoder is not built (the paper found it worse).
    prompt_encoder_hidden: h; null = d_model (§3.2).
    double_epochs_up_to: the code doubles the epochs when k <= 10 (``adjust_epochs``,
        ``run_seq2seq.py:994-997``); 0 = never (the paper says nothing of it).
    """

    composition: str = "ssum"
    task_set: Optional[str] = None
    n_sources: int = 3
    prompt_length: int = 20
    weights: str = "learned"
    lr: float = 0.05
    private_lr: float = 0.02
    router_lr: float = 0.1
    temperature_start: float = 5.0
    temperature_end: float = 1e-3
    anneal_rate: Optional[float] = None
    top_k: Optional[int] = None
    private_in_pool: bool = False
    init: str = "uniform"
    init_range: float = 0.5
    prompt_encoder: str = "mlp"
    prompt_encoder_hidden: Optional[int] = None
    double_epochs_up_to: int = 0
    prompt_position: str = "suffix"  # §2.1: "we positioned the prompt tokens after the input tokens"

    def validate(self) -> None:
        super().validate()
        check_fields(self, choices={"composition": COMPOSITIONS, "weights": WEIGHTS, "init": COMPT_INITS,
                                    "prompt_encoder": COMPT_ENCODERS},
                     at_least_one=("n_sources", "prompt_length", "top_k", "prompt_encoder_hidden"),
                     positive=("private_lr", "router_lr", "temperature_start", "temperature_end", "anneal_rate",
                               "init_range"),
                     non_negative=("double_epochs_up_to",))
        if self.temperature_end > self.temperature_start:
            raise ConfigError(f"temperature_end: {self.temperature_end} is above temperature_start "
                              f"{self.temperature_start} (the temperature is annealed down)")
        if self.composition == "mcat" and (self.top_k is not None or self.private_in_pool):
            raise ConfigError("top_k, private_in_pool: not built for mcat (the code concatenates the k sources it "
                              "selects, in a random order each pass: docs/methods/compt.md)")
        if self.prompt_encoder_hidden is not None and self.prompt_encoder == "none":
            raise ConfigError("prompt_encoder_hidden: set, but prompt_encoder is 'none' (no encoder to size)")

    @property
    def pool(self) -> int:
        return self.n_sources + self.private_in_pool

    @property
    def private_length(self) -> int:
        return self.prompt_length * (self.n_sources if self.composition == "mcat" else 1)


class ComPT(Method):
    """A ComPT composition (``defaults["composition"]``) over a task set."""

    config_cls = ComPTConfig
    multi_task = True
    formulations = ("mrc", "seq2seq")
    prompt_encoders = COMPT_ENCODERS
    prompt_encoder_formulations = ("mrc", "seq2seq")

    def __init__(self, name: str, label: str, composition: str, rows: tuple = (), tables: tuple = (),
                 **defaults):
        self.name, self.paper_label, self.rows, self.tables = name, label, rows, tables
        self.defaults = {"composition": composition, **defaults}

    def prompt_length(self, cfg) -> int:
        return cfg.private_length

    def job_config(self, cfg, shot) -> ComPTConfig:
        """The config a job at ``shot`` trains with: epochs doubled at k <= double_epochs_up_to."""
        if cfg.double_epochs_up_to and isinstance(shot, int) and shot <= cfg.double_epochs_up_to:
            return replace(cfg, epochs=2 * cfg.epochs)
        return cfg

    # --- the model -------------------------------------------------------------------------

    def _encoders(self, backbone, cfg, seeds: List[int], n: int, length: int, purpose: str) -> PromptEncoders:
        emb = backbone.get_input_embeddings().weight.detach()
        d = emb.shape[1]
        rows = []
        for s in seeds:
            if cfg.init == "ordinal":
                rows.append(emb[:length].float().clone()[None].repeat(n, 1, 1))
            else:
                g = seed_generator(s, f"compt-{purpose}")
                rows.append((torch.rand(n, length, d, generator=g) * 2 - 1) * cfg.init_range)
        if cfg.prompt_encoder == "none":
            return PromptEncoders(torch.stack(rows))
        h = cfg.prompt_encoder_hidden or d
        per_seed = []
        for s in seeds:
            first = [linear_init(s, f"compt-{purpose}{i}-encoder-1", h, d) for i in range(n)]
            second = [linear_init(s, f"compt-{purpose}{i}-encoder-2", d, h) for i in range(n)]
            per_seed.append([torch.stack([w for w, _ in first]), torch.stack([b for _, b in first]),
                             torch.stack([w for w, _ in second]), torch.stack([b for _, b in second])])
        return PromptEncoders(torch.stack(rows), [torch.stack([p[i] for p in per_seed]) for i in range(4)])

    def build_set(self, backbone, spec, tokenizer, cfg, seeds: List[int], tasks: Sequence[str]):
        """The model of (seeds x tasks) rows, row = seed index x len(tasks) + task index."""
        from ..model import PromptedMRC, PromptedSeq2Seq, RowSpanHead

        backbone.requires_grad_(False)
        sources = self._encoders(backbone, cfg, seeds, cfg.n_sources, cfg.prompt_length, "source")
        privates = self._encoders(backbone, cfg, seeds, len(tasks), cfg.private_length, "private")
        # the code's router starts at 0 (third_party/models/t5/modeling_t5.py:1253-1258)
        router = torch.zeros(len(seeds), len(tasks), cfg.pool)
        prompt = ComposedPrompt(sources, privates, router, cfg.composition, cfg.weights, cfg.top_k,
                                cfg.private_in_pool, [seed_generator(s, "compt-router-noise") for s in seeds])
        if self.seq2seq(cfg):
            model = PromptedSeq2Seq(backbone, prompt)
        else:  # the embedded MRC formulation: a span head per row, as every MRC cell has its own
            heads = span_head(spec.d_model, seeds).weight.detach()  # each task of a seed starts from its seed's head
            model = PromptedMRC(backbone, spec, RowSpanHead(heads[:, None].repeat(1, len(tasks), 1, 1)), prompt)
        model.spec, model.n_tasks = spec, len(tasks)
        return model

    def param_groups(self, model, cfg) -> List[Dict]:
        prompt = model.prompt
        groups = [{"params": list(prompt.sources.parameters()), "lr": cfg.lr},
                  {"params": list(prompt.privates.parameters()), "lr": cfg.private_lr}]
        if cfg.weights == "learned":
            groups.append({"params": [prompt.router], "lr": cfg.router_lr})
        else:
            prompt.router.requires_grad_(False)
        if getattr(model, "head", None) is not None:
            groups.append({"params": list(model.head.parameters()), "lr": cfg.head_lr})
        return groups

    def on_step(self, model, cfg, step: int, total_steps: int) -> None:
        model.prompt.draw(temperature_at(step, total_steps, cfg.temperature_start, cfg.temperature_end,
                                         cfg.anneal_rate))

    def row_states(self, model, rows: Sequence[int]) -> List[Dict[str, torch.Tensor]]:
        """What each row of ``rows`` (seed x tasks + task) needs at inference: its sources,
        private prompt and router logits (and MRC head), detached: about M x m x d numbers.
        The prompts are encoded once for all of them."""
        with torch.no_grad():
            sources, private, _ = model.prompt.parts()
        n_tasks = model.n_tasks
        states = []
        for row in rows:
            s, t = divmod(row, n_tasks)
            state = {"sources": sources[row].cpu().clone(), "private": private[row].cpu().clone(),
                     "router": model.prompt.router.detach()[s, t].cpu().clone()}
            if getattr(model, "head", None) is not None:
                state["head"] = model.head.weight.detach()[s, t].cpu().clone()
            states.append(state)
        return states

    def frozen_model(self, model, cfg, states: Sequence[Dict], masks: Sequence):
        """A model whose row i is ``states[i]`` under ``masks[i]`` (``Mask`` or None: all)."""
        from ..model import PromptedMRC, PromptedSeq2Seq, SpanHead

        keep = torch.stack([torch.ones(cfg.pool, dtype=torch.bool) if m is None
                            else m.keep_tensor(cfg.n_sources, cfg.private_in_pool) for m in masks])
        on = torch.tensor([1.0 if m is None or m.private else 0.0 for m in masks])
        prompt = FrozenComposition(torch.stack([s["sources"] for s in states]),
                                   torch.stack([s["private"] for s in states]),
                                   torch.stack([s["router"] for s in states]), keep, on, cfg.composition,
                                   cfg.weights, cfg.top_k, cfg.private_in_pool)
        backbone = model.backbone
        if "head" in states[0]:
            frozen = PromptedMRC(backbone, model.spec, SpanHead(torch.stack([s["head"] for s in states])), prompt)
        else:
            frozen = PromptedSeq2Seq(backbone, prompt)
        return frozen

    # --- counts ----------------------------------------------------------------------------

    def prompt_modules(self, spec, cfg, n_seeds: int = 1, n_tasks: int = 1) -> Dict[str, torch.nn.Module]:
        d = spec.d_model
        h = cfg.prompt_encoder_hidden or d
        meta = lambda *shape: torch.empty(n_seeds, *shape, device="meta")  # noqa: E731

        def encoders(n, length):
            mlp = None if cfg.prompt_encoder == "none" else [meta(n, h, d), meta(n, h), meta(n, d, h), meta(n, d)]
            return PromptEncoders(meta(n, length, d), mlp)

        modules = {"sources": encoders(cfg.n_sources, cfg.prompt_length),
                   "private": encoders(n_tasks, cfg.private_length)}
        if cfg.weights == "learned":
            modules["router"] = torch.nn.ParameterList([torch.nn.Parameter(meta(n_tasks, cfg.pool))])
        if not self.seq2seq(cfg):
            from ..model import RowSpanHead

            modules["head"] = RowSpanHead(torch.empty(n_seeds, n_tasks, d, 2, device="meta"))
        return modules

    def trainable_parameters(self, spec, cfg, n_tasks: int = 1) -> Dict[str, int]:
        """Per seed, for a set of ``n_tasks``: {"sources", "private", "router", "prompt" (the
        three), "head" (MRC)}."""
        counts = {name: sum(p.numel() for p in module.parameters())
                  for name, module in self.prompt_modules(spec, cfg, 1, n_tasks).items()}
        counts["prompt"] = counts["sources"] + counts["private"] + counts.get("router", 0)
        return counts


# The paper's rows: Table 1's (GLUE) are the plain names; Tables 2 and 4 print SET2's under
# the same labels, Table 7 SET2 with and without MNLI. ``tables`` says where each fills.
for _comp, _label, _extra in (("ssum", "SSUM", {}), ("msum", "MSUM", {}), ("mcat", "MCAT", {"prompt_length": 10})):
    register_method(ComPT(f"compt-{_comp}", _label, _comp, tables=(("compt", "1"), ("compt", "3")), **_extra))
    register_method(ComPT(f"compt-{_comp}-set2", _label, _comp, rows=(f"compt-{_comp}",),
                          tables=(("compt", "2"), ("compt", "4"), ("compt", "7")), **_extra))
    register_method(ComPT(f"compt-{_comp}-set2-mnli", _label, _comp, rows=(f"compt-{_comp}-include-mnli",),
                          tables=(("compt", "7"),), **_extra))
