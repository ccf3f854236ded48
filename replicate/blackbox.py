"""Forward-only (black-box) tuning: the backbone is a service that answers forward passes.

Every black-box method here searches low-dimensional *intrinsic* vectors, one per prompted
layer, that fixed projections A map to prompts (BBT, Sun et al. 2022c; MP2 §3.2):
the prompt of layer l is ``A_l x_l``, reshaped to (length, d_model), and is added to the
hidden states at the prompt slots like every other prompt of the harness (``model.PromptedMRC``).
``x_l = base_l + offset_l``: BBT's base is zero; black-box MP2's is the *pre-fused* intrinsic
prompt ``sum_k w_lk z_lk`` of its router (MP2 Fig 6b), so the prompt A_l x_l equals the
router-weighted sum of the pre-trained modular prompts A_l z_lk.

Two optimisers, from maintained libraries:

- Bayesian optimisation (``bayes_opt``, UCB acquisition) of the routers, one suggestion per
  seed per step (MP2 stage I);
- CMA-ES (``cma``) of the offsets, one evolution strategy per seed and prompted layer. Deep
  prompts are searched by divide and conquer (BBTv2): in each round every layer in turn runs
  one generation while the other layers keep their best-so-far offsets.

A population is a batch: every candidate of every seed becomes one *row* with its own prompt;
each row is paired with its seed's training examples, and all (row, example) pairs run through
the one frozen backbone in shared batches (sorted by length, so little is padding). The budget
counts model forward calls as BBT and MPMP do: one call is one candidate's pass over its
seed's whole few-shot training set (dev and test passes are not counted).

Selection: every ``eval_every`` calls, the candidate with the lowest training loss since the
last check is scored on dev; the best on dev over all stages is tested (BBT, MPMP). A stage's
own best and its test score are recorded too (MP2's "Router-only" rows are stage I alone),
with its wall time and forward calls (MP2 Table 4).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from .batching import in_length_order
from .io import seed_digest
from .logs import Progress
from .model import inference_weights
from .train import SeedData, SeedOutcome, split_by_sizes


def library_seed(seed: int, purpose: str) -> int:
    """A positive 31-bit integer keyed by (cell seed, purpose): the seed handed to ``cma`` (where
    0 would mean "from the clock") and to ``bayes_opt``."""
    return int.from_bytes(seed_digest(seed, purpose)[:4], "big") % (2**31 - 2) + 1


class PopulationPrompt(nn.Module):
    """A prompt source whose rows (one per seed and candidate) are set before each forward
    pass; it holds no trainable parameters."""

    def __init__(self, depth: int):
        super().__init__()
        self.depth = depth
        self.rows: Optional[torch.Tensor] = None  # (rows, depth, length, d)

    def forward(self) -> torch.Tensor:
        if self.rows is None:
            raise RuntimeError("set the population's prompts before a forward pass")
        return self.rows


class RowSpanHead(nn.Module):
    """Each seed's frozen span head, read by row: row r uses the head of seed ``row_seed[r]``."""

    def __init__(self, weight: torch.Tensor):  # (seeds, d, 2)
        super().__init__()
        self.register_buffer("weight", weight.float().clone())
        self.row_seed: Optional[torch.Tensor] = None

    def forward(self, hidden: torch.Tensor, row_index: torch.Tensor) -> torch.Tensor:
        w = self.weight[self.row_seed.to(row_index.device)[row_index]]
        return torch.einsum("btd,bdk->btk", hidden, w.to(hidden.dtype))


@dataclass
class IntrinsicSpace:
    """Seed s's search space: ``A`` (depth, intrinsic_dim, length * d) and the base vectors
    (depth, intrinsic_dim) that the offsets are added to."""

    A: torch.Tensor
    base: torch.Tensor
    length: int
    d_model: int

    def prompts(self, x: torch.Tensor) -> torch.Tensor:
        """(n, depth, length, d) prompts of n intrinsic vectors x (n, depth, intrinsic_dim)."""
        n, depth, _ = x.shape
        out = torch.einsum("nli,lik->nlk", x.to(self.A.device, self.A.dtype), self.A)
        return out.view(n, depth, self.length, self.d_model)

    def layer_prompts(self, x: torch.Tensor, layer: int) -> torch.Tensor:
        """(n, length, d) prompts of layer ``layer`` for n vectors x (n, intrinsic_dim)."""
        return (x.to(self.A.device, self.A.dtype) @ self.A[layer]).view(x.shape[0], self.length, self.d_model)


class PopulationEvaluator:
    """Training losses and predictions of many rows (seed, candidate) in shared forward passes,
    through the method's formulation (``formulation.py``: MRC spans, or label words at a
    [MASK]), which encodes, batches, scores and reads the answers."""

    def __init__(self, model, data: List[SeedData], pad_id: int, precision: str, batch_size: int, formulation):
        self.model, self.data, self.pad_id, self.formulation = model, data, pad_id, formulation
        self.batch_size, self.precision = batch_size, precision
        self.device = next(model.backbone.parameters()).device
        self.calls = 0  # model forward calls as the papers count them (training set passes)

    def forward(self, batch) -> torch.Tensor:
        """The formulation's scores for ``batch`` (under bfloat16 autocast with bf16), as fp32."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            out = self.formulation.forward(self.model, batch)
        return out.float()

    def _set_rows(self, prompts: torch.Tensor, row_seed: Sequence[int]) -> None:
        self.model.prompt.rows = prompts.to(self.device)
        self.model.head.row_seed = torch.tensor(list(row_seed), dtype=torch.long)

    def losses(self, prompts: torch.Tensor, row_seed: Sequence[int]) -> List[float]:
        """Mean training loss of each row: its prompts (rows, depth, length, d) over its
        seed's training set. Counts one forward call per row."""
        self._set_rows(prompts, row_seed)
        pairs = [(r, j) for r, s in enumerate(row_seed) for j in range(len(self.data[s].train))]
        # the same example of every row side by side: batches of equal-length inputs
        pairs.sort(key=lambda p: (len(self.data[row_seed[p[0]]].train[p[1]].input_ids), p[1], p[0]))
        total = torch.zeros(len(row_seed), dtype=torch.float64)
        with torch.inference_mode():
            for i in range(0, len(pairs), self.batch_size):
                chunk = pairs[i:i + self.batch_size]
                batch = self.formulation.collate([self.data[row_seed[r]].train[j] for r, j in chunk],
                                                 [r for r, _ in chunk], self.pad_id, self.device)
                loss = self.formulation.losses(self.forward(batch), batch)
                total.index_add_(0, batch.seed_index.cpu(), loss.detach().double().cpu())
        self.calls += len(row_seed)
        counts = torch.tensor([len(self.data[s].train) for s in row_seed], dtype=torch.float64)
        return (total / counts).tolist()

    def predict(self, prompts: torch.Tensor, row_seed: Sequence[int], split: str) -> List[List]:
        """Predictions of each row on its seed's ``split`` (not counted as training calls)."""
        self._set_rows(prompts, row_seed)
        pairs = [(r, e) for r, s in enumerate(row_seed) for e in getattr(self.data[s], split)]
        def predict(idx: List[int]) -> List:
            batch = self.formulation.collate([pairs[i][1] for i in idx], [pairs[i][0] for i in idx], self.pad_id,
                                             self.device)
            return self.formulation.predictions(self.forward(batch), batch)

        with torch.inference_mode():  # length order: little padding
            preds = in_length_order([e for _, e in pairs], self.batch_size, predict)
        return split_by_sizes(preds, [len(getattr(self.data[s], split)) for s in row_seed])


@dataclass
class Candidate:
    """What a row stands for: the full intrinsic vectors (depth, intrinsic_dim) and, for a
    router candidate, the router (depth, K)."""

    x: torch.Tensor
    router: Optional[torch.Tensor] = None


class SearchStage:
    """A black-box stage. ``run(tuner)`` proposes candidates per seed, has the tuner evaluate
    them (``tuner.evaluate``) and feeds the losses back to its optimisers, until its budget of
    forward calls per seed is spent."""

    name: str = ""
    budget: int = 0
    eval_every: int = 1  # calls per seed between dev checks
    from_best: bool = False  # start from the best candidate on dev so far (its x as the base)

    def run(self, tuner: "BlackBoxTuner") -> None:
        raise NotImplementedError


class RouterSearch(SearchStage):
    """MP2 stage I, black-box: Bayesian optimisation (UCB) of the routers, one 'depth x K'
    vector per seed in [-bound, bound]; ``init_points`` random draws first (MPMP: 20). A
    router's weights are its inference form ``combine`` (``model.inference_weights``: the
    pre-training's); its candidate's base is the pre-fused z, ``sum_k w_k z_k`` per layer."""

    def __init__(self, z: torch.Tensor, combine: str, budget: int, bound: float, kappa: float, init_points: int,
                 eval_every: int, name="I: router"):
        self.z = z.float()  # (depth, K, intrinsic_dim), shared by every seed
        self.combine = combine
        self.budget, self.bound, self.kappa, self.init_points, self.name = budget, bound, kappa, init_points, name
        self.eval_every = eval_every

    def fused(self, router: torch.Tensor) -> torch.Tensor:
        return torch.einsum("lk,lki->li", inference_weights(router, self.combine), self.z)

    def run(self, tuner: "BlackBoxTuner") -> None:
        from bayes_opt import BayesianOptimization
        from bayes_opt.acquisition import UpperConfidenceBound

        depth, k, _ = self.z.shape
        keys = [f"w{i:03d}" for i in range(depth * k)]
        optimisers = {s: BayesianOptimization(f=None, pbounds={key: (-self.bound, self.bound) for key in keys},
                                              acquisition_function=UpperConfidenceBound(kappa=self.kappa),
                                              random_state=library_seed(tuner.data[s].seed, "bayes-opt"),
                                              verbose=0, allow_duplicate_points=True)
                      for s in tuner.active}
        for step in range(self.budget):
            seeds = list(tuner.active)
            if not seeds:
                return
            suggestions = {s: (optimisers[s].random_sample(1)[0] if step < self.init_points else optimisers[s].suggest())
                           for s in seeds}
            cands = {}
            for s in seeds:
                router = torch.tensor([suggestions[s][key] for key in keys], dtype=torch.float32).view(depth, k)
                cands[s] = [Candidate(self.fused(router), router)]
            losses = tuner.evaluate(cands)
            for s in seeds:
                if s in losses:
                    optimisers[s].register(params=suggestions[s], target=-losses[s][0])


class OffsetSearch(SearchStage):
    """CMA-ES of offsets from each seed's base vectors, mean 0. ``sigmas[l]``: the initial
    step size of layer l. With one layer (shallow), one strategy runs ``budget // popsize``
    generations; with several, divide and conquer (BBTv2 ``deepbbt.py:699-721``): each round
    runs one generation per layer, layers in order, while the other layers keep the best
    offset their strategy has seen (``es.result.xbest``). ``bound`` (> 0) keeps every entry of
    base + offset in [-bound, bound] (or between the base and 0, where the base is outside).
    Every generation the budget allows runs: pycma's early-stopping tolerances are off."""

    def __init__(self, budget: int, popsize: int, sigmas: Sequence[float], bound: float, eval_every: int,
                 name="II: prompt", from_best: bool = False):
        self.budget, self.popsize, self.sigmas, self.bound, self.name = budget, popsize, list(sigmas), bound, name
        self.eval_every, self.from_best = eval_every, from_best

    def run(self, tuner: "BlackBoxTuner") -> None:
        import cma

        depth = len(self.sigmas)
        rounds = self.budget // (self.popsize * depth)
        strategies, current = {}, {}
        for s in tuner.active:
            base = tuner.spaces[s].base
            current[s] = torch.zeros_like(base)
            for layer in range(depth):
                opts = {"seed": library_seed(tuner.data[s].seed, f"cma-es/{layer}"), "popsize": self.popsize,
                        "verbose": -9, "maxiter": rounds + 1, "tolfun": 0, "tolflatfitness": 10**9,
                        "tolfunhist": 0, "tolx": 0, "tolstagnation": 10**9}
                if self.bound > 0:
                    # bounds on base + offset; an entry the pre-training left outside them
                    # may stay where it is (the offset 0 is always allowed)
                    b = base[layer].double().numpy()
                    opts["bounds"] = [list(np.minimum(-self.bound - b, 0)), list(np.maximum(self.bound - b, 0))]
                strategies[s, layer] = cma.CMAEvolutionStrategy(np.zeros(base.shape[1]), self.sigmas[layer], opts)
        for _ in range(rounds):
            for layer in range(depth):
                seeds = list(tuner.active)
                if not seeds:
                    return
                asked = {s: strategies[s, layer].ask() for s in seeds}
                cands = {}
                for s in seeds:
                    rows = []
                    for member in asked[s]:
                        offset = current[s].clone()
                        offset[layer] = torch.as_tensor(member, dtype=torch.float32)
                        rows.append(Candidate(tuner.spaces[s].base + offset))
                    cands[s] = rows
                losses = tuner.evaluate(cands, vary_layer=layer if depth > 1 else None)
                for s in seeds:
                    if s in losses:
                        strategies[s, layer].tell(asked[s], losses[s])
                        current[s][layer] = torch.as_tensor(strategies[s, layer].result.xbest, dtype=torch.float32)


class BlackBoxTuner:
    """Runs a method's search stages for the seeds of one group (the trainer of black-box
    methods; ``train.run_group`` picks it by ``Method.trainer``)."""

    def __init__(self, model, method, cfg, task, encoder, data: List[SeedData], pad_id: int,
                 log: Callable[[str], None] = print):
        self.model, self.method, self.cfg, self.task, self.encoder = model, method, cfg, task, encoder
        model.eval()  # a service answers deterministically: no dropout, ever
        self.data, self.log = data, log
        self.n = len(data)
        self.spaces: Dict[int, IntrinsicSpace] = {}  # filled by the method's search_stages
        if hasattr(method, "formulation"):
            self.formulation = method.formulation(cfg, task)
        else:
            from .formulation import MRC
            self.formulation = MRC(task)
        self.evaluator = PopulationEvaluator(model, data, pad_id, cfg.precision, cfg.eval_batch_size,
                                             self.formulation)
        self.active = list(range(self.n))
        self.outcomes = [SeedOutcome(seed=d.seed) for d in data]
        self.best: List[Optional[Candidate]] = [None] * self.n
        self._since_check: Dict[int, tuple] = {}
        self._stage_best: Dict[int, tuple] = {}
        self._stage_calls = 0
        self._next_check = 0
        self._eval_every = 1

    def _prompts_of(self, s: int, cands: List[Candidate], vary_layer: Optional[int]) -> torch.Tensor:
        space = self.spaces[s]
        if vary_layer is None:
            return space.prompts(torch.stack([c.x for c in cands]))
        # divide and conquer: the other layers are the same for every candidate
        fixed = space.prompts(cands[0].x.unsqueeze(0)).expand(len(cands), -1, -1, -1).clone()
        fixed[:, vary_layer] = space.layer_prompts(torch.stack([c.x[vary_layer] for c in cands]), vary_layer)
        return fixed

    def evaluate(self, cands: Dict[int, List[Candidate]], vary_layer: Optional[int] = None) -> Dict[int, List[float]]:
        """Training loss of every candidate of every seed, all in shared forward passes; keeps
        each seed's lowest-loss candidate since the last dev check and runs the check when
        ``eval_every`` calls per seed have passed."""
        seeds = [s for s in cands if s in self.active]
        prompts = torch.cat([self._prompts_of(s, cands[s], vary_layer) for s in seeds])
        row_seed = [s for s in seeds for _ in cands[s]]
        flat = self.evaluator.losses(prompts, row_seed)
        out = dict(zip(seeds, split_by_sizes(flat, [len(cands[s]) for s in seeds])))
        for s in seeds:
            finite = [(v, i) for i, v in enumerate(out[s]) if math.isfinite(v)]
            if not finite:
                self._fail(s, f"every candidate's loss is not finite at call {self._calls_per_seed()}")
                continue
            loss, i = min(finite)
            if s not in self._since_check or loss < self._since_check[s][0]:
                self._since_check[s] = (loss, cands[s][i])
        self._stage_calls += len(cands[seeds[0]]) if seeds else 0
        self.meter.tick(self._calls_per_seed())
        if self._calls_per_seed() >= self._next_check:
            self._check_dev()
            while self._next_check <= self._calls_per_seed():
                self._next_check += self._eval_every
        return {s: v for s, v in out.items() if s in self.active}

    def _calls_per_seed(self) -> int:
        return self._calls_before_stage + self._stage_calls

    def _fail(self, s: int, why: str) -> None:
        self.outcomes[s].status, self.outcomes[s].error = "failed", why
        self.active.remove(s)
        self.log(f"seed {self.data[s].seed}: {why}")

    def _check_dev(self) -> None:
        seeds = [s for s in self.active if s in self._since_check]
        if not seeds:
            return
        cands = {s: self._since_check.pop(s) for s in seeds}
        prompts = torch.cat([self._prompts_of(s, [cands[s][1]], None) for s in seeds])
        preds = self.evaluator.predict(prompts, seeds, "dev")
        calls = self._calls_per_seed()
        for s, p in zip(seeds, preds):
            dev = self.formulation.score(self.encoder, self.data[s].dev, p)[self.task.metric]
            o = self.outcomes[s]
            o.dev_curve.append([calls, round(dev, 5)])
            o.loss_curve.append([calls, round(cands[s][0], 5)])
            if dev > o.best_dev:  # strictly better: the earliest wins ties (BBT, MPMP)
                o.best_dev, o.best_epoch, self.best[s] = dev, calls, cands[s][1]
            if dev > self._stage_best.get(s, (float("-inf"),))[0]:
                self._stage_best[s] = (dev, calls, cands[s][1])
        self.log(f"{calls} calls: dev " + " ".join(f"{self.outcomes[s].dev_curve[-1][1]:.3f}" for s in seeds)
                 + f" | {self.meter.text(calls)}")

    def test(self, cands: Dict[int, Candidate]) -> Dict[int, Dict[str, float]]:
        seeds = [s for s in cands if cands[s] is not None]
        if not seeds:
            return {}
        prompts = torch.cat([self._prompts_of(s, [cands[s]], None) for s in seeds])
        preds = self.evaluator.predict(prompts, seeds, "test")
        return {s: self.formulation.score(self.encoder, self.data[s].test, p) for s, p in zip(seeds, preds)}

    def fit(self) -> List[SeedOutcome]:
        stages = self.method.search_stages(self)
        self._calls_before_stage = 0
        # rate and ETA in the log only: forward calls per seed, of the stages' budgets
        self.meter = Progress(sum(stage.budget for stage in stages), self.log, unit="call")
        for stage_no, stage in enumerate(stages):
            self._stage_best, self._stage_calls = {}, 0
            self._eval_every = stage.eval_every
            self._next_check = self._calls_before_stage + stage.eval_every
            start = time.perf_counter()
            if stage.from_best:
                # MPMP's stage II starts from the router chosen on dev (Shallow/bbt.py:296, 313-318)
                for s in list(self.active):
                    if self.best[s] is None:
                        self._fail(s, f"no candidate of stage {stages[stage_no - 1].name!r} was scored on dev")
                    else:
                        self.spaces[s].base = self.best[s].x.clone()
            stage.run(self)
            if self._since_check:  # the stage's last candidates get their dev check
                self._check_dev()
            wall = time.perf_counter() - start
            last = stage_no == len(stages) - 1
            if not last and self._stage_best:
                tested = self.test({s: self._stage_best[s][2] for s in self.active if s in self._stage_best})
            else:
                tested = {}
            for s in range(self.n):
                record = {"name": stage.name, "calls": [self._calls_before_stage + 1,
                                                        self._calls_before_stage + self._stage_calls],
                          "forward_calls": self._stage_calls, "wall_s": round(wall, 3), "group_seeds": self.n}
                if s in self._stage_best:
                    record.update(best_call=self._stage_best[s][1], best_dev=round(self._stage_best[s][0], 5))
                    if s in tested:
                        record["test_metrics"] = tested[s]
                self.outcomes[s].stages.append(record)
            self._calls_before_stage += self._stage_calls
        for s, metrics in self.test({s: self.best[s] for s in self.active}).items():
            self.outcomes[s].test_metrics = metrics
        for s in list(self.active):
            if self.best[s] is None:
                self._fail(s, "no candidate was scored on dev (a budget below eval_every?)")
        return self.outcomes
