"""A run's plan, offline: the jobs a table target needs, the positions they process, and an
estimate of their GPU-hours and memory (``python -m replicate plan``).

The jobs are the DAG's (rules/*.smk), found from the config alone, as the Snakefile finds
them: a table target reads the cells of ``tables.table_groups`` (MP2's ``table3`` also the
groups of its Fig 3 and the pre-training of its Fig 5); a cell's group is one ``train`` job
(a multi-task method's, one ``train-set`` job for its whole task set), which reads the split
manifests of its (task, shot) and starts from its pre-training, which reads its pre-training
data (and a distilling run its teachers' pre-training). Every job counts as not yet run.

Positions are upper bounds: every example counts ``max_length`` positions (prompt slots
included; a seq2seq job also its ``max_target_length`` decoder positions), where a batch
pads to its longest. Budgets come from the method and pre-training configs (epochs, batch
size, dev-check interval, black-box calls), sizes from the protocol (train and dev: the shot,
or ``per_label_when_many`` per label; test: ``test_cap``; unknown without one: left out of
the sums and listed).

Time: a job's positions times the seconds per position of its backbone's shape, from
``replicate/data/step_times.json`` (``bench/step_times.py``: a CPU's achieved FLOP rate per
shape under ``flops_per_position``), scaled to a GPU by the ratio of the GPU's nominal dense
peak to the CPU's measured bf16 matmul peak, i.e. assuming both reach the same fraction of
their peak. Memory: parameters, the trained parameters' gradients and AdamW state, and one
batch's activations. Both are estimates, and the output says so.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from .errors import ConfigError

STEP_TIMES = Path(__file__).resolve().parent / "data" / "step_times.json"
# name -> (printed name, nominal dense peak FLOP/s without sparsity, at the precision named)
GPUS = {"h100": ("H100 SXM", 989e12, "bf16"), "a100": ("A100", 312e12, "bf16"), "v100": ("V100", 125e12, "fp16")}
# kind -> what the summary calls one and several, in DAG order
KINDS = {"fetch-data": ("data fetch", "data fetches"), "split": ("split", "splits"),
         "pretrain-data": ("pre-training data job", "pre-training data jobs"),
         "pretrain": ("pre-training", "pre-trainings"), "train": ("training group", "training groups"),
         "train-set": ("task-set group", "task-set groups")}
GPU_KINDS = ("pretrain", "train", "train-set")
# Bytes a trained fp32 parameter adds: its gradient and AdamW's two moments.
TRAINED_BYTES = 12
PARAM_BYTES = 4  # the backbone loads in fp32; bf16 autocast keeps parameters fp32


@dataclass
class Job:
    """One DAG job. Positions: ``fwd_train`` forward positions of training steps (or of a
    black-box search's calls), ``bwd`` the positions their backward passes go through,
    ``fwd_eval`` forward-only positions (dev checks, tests, a distilling run's teachers)."""

    kind: str
    name: str
    backbone: Optional[str] = None
    cells: int = 0
    length: int = 0            # positions per example (upper bound)
    fwd_train: int = 0
    bwd: int = 0
    fwd_eval: int = 0
    weight_grads: bool = False  # the backbone trains (model tuning): backward also to its weights
    trained_params: int = 0
    batch_positions: int = 0    # positions of the largest training batch
    eval_batch_positions: int = 0
    unknown: List[Tuple[str, str]] = field(default_factory=list)  # (size, of what) left out of the sums
    after: List[tuple] = field(default_factory=list)  # keys of the plan's jobs this one waits for

    @property
    def fwd(self) -> int:
        return self.fwd_train + self.fwd_eval


def target_names() -> List[str]:
    """Every table target of the Snakefile: ``tables``, ``table3`` and one per paper table."""
    from .tables import table_names

    return ["tables", "table3"] + [f"{paper}_table{table}" for paper, table in table_names()]


def check_targets(targets: Iterable[str]) -> None:
    """ConfigError (one line, listing the known targets) for the first unknown target."""
    known = target_names()
    for t in targets:
        if t not in known:
            raise ConfigError(f"unknown target {t!r}; known: {', '.join(known)}")


@dataclass
class Needs:
    """What a target reads: cell groups, split manifests (task, shot), pre-training runs (name, backbone)."""

    groups: list = field(default_factory=list)
    manifests: set = field(default_factory=set)
    pretrainings: set = field(default_factory=set)


def _table_needs(cfg: dict, paper: str, table: str, needs: Needs) -> None:
    """rules/common.smk ``table_inputs``: the cells of the table's regenerated rows and the
    split manifests its majority-class reference reads."""
    from .tables import regenerated_sources, table_groups, table_shots, table_tasks

    if not regenerated_sources(cfg, paper, table):
        return
    needs.groups += table_groups(cfg, paper, table)
    shot = table_shots(cfg, paper, table)[0]
    needs.manifests |= {(task, shot) for task in table_tasks(cfg, paper, table)}


def target_needs(cfg: dict, target: str) -> Needs:
    """What ``target`` (``target_names``) reads, as rules/tables.smk and rules/figures.smk say."""
    from .config import groups, pretrainings_of
    from .methods import METHODS
    from .tables import regenerated_methods, table_methods, table_names

    check_targets([target])
    needs = Needs()
    if target == "tables":
        for paper, table in table_names():
            if regenerated_methods(cfg, paper, table):
                _table_needs(cfg, paper, table, needs)
    elif target == "table3":  # MP2 Table 3 and MP2's Figs 5 (a pre-training's routers) and 3 (two-stage curves)
        _table_needs(cfg, "mp2", "3", needs)
        fig5 = (pretrainings_of(cfg).get("mp2-shallow") or [None])[0]
        if fig5:
            needs.pretrainings.add((fig5, cfg["grid"]["backbone"]))
        two_stage = [m for m in cfg["grid"]["methods"]
                     if (hasattr(METHODS.get(m), "stage_counts") and m in table_methods("mp2", "3"))
                     or "stage1" in METHODS.get(m).row_views.values()]
        needs.groups += [g for g in groups(cfg) if g.method in two_stage]
    else:
        paper, table = target.split("_table", 1)
        _table_needs(cfg, paper, table, needs)
    return needs


def expand_jobs(cfg: dict, needs: Needs) -> Dict[tuple, Job]:
    """The jobs ``needs`` takes, each once (keyed as the DAG's nodes), with their budgets."""
    from .config import TaskSetGroup, cell_pretraining, set_tasks
    from .methods import METHODS
    from .tasks import TASKS

    jobs: Dict[tuple, Job] = {}

    def fetch_for(tasks) -> None:
        if any(TASKS.get(t).source.fetched_files for t in tasks):
            jobs.setdefault(("fetch-data",), Job("fetch-data", "fetch-data"))

    def split(task: str, shot) -> None:
        key = ("split", task, str(shot))
        if key not in jobs:
            jobs[key] = Job("split", f"split {task} shot{shot}")
            fetch_for([task])

    def pretrain(name: str, backbone: str) -> None:
        key = ("pretrain", name, backbone)
        if key in jobs:
            return
        jobs[key] = pretrain_job(cfg, name, backbone)
        jobs[key].after.append(("pretrain-data", name))
        if ("pretrain-data", name) not in jobs:
            jobs[("pretrain-data", name)] = Job("pretrain-data", f"pretrain-data {name}")
            suites = {TASKS.get(t).suite for t in cfg["pretraining"][name]["tasks"]}
            fetch_for([t for t in TASKS if TASKS.get(t).suite in suites])
        teachers = (cfg["pretraining"][name] or {}).get("teachers")
        if teachers:
            pretrain(teachers, backbone)
            jobs[key].after.append(("pretrain", teachers, backbone))

    for task, shot in sorted(needs.manifests, key=str):
        split(task, shot)
    for g in needs.groups:
        if METHODS.get(g.method).multi_task:
            tsg = TaskSetGroup(g.method, g.backbone, g.shot, tuple(set_tasks(cfg, g.method)))
            key = ("train-set", tsg)
            if key not in jobs:
                jobs[key] = task_set_job(cfg, tsg)
                for t in tsg.tasks:
                    split(t, g.shot)
                    jobs[key].after.append(("split", t, str(g.shot)))
            continue
        key = ("train", g)
        if key in jobs:
            continue
        jobs[key] = train_job(cfg, g)
        split(g.task, g.shot)
        fetch_for([g.task])
        jobs[key].after.append(("split", g.task, str(g.shot)))
        pre = cell_pretraining(cfg, g.method, g.task)
        if pre is not None:
            pretrain(pre, g.backbone)
            jobs[key].after.append(("pretrain", pre, g.backbone))
    for name, backbone in sorted(needs.pretrainings):
        pretrain(name, backbone)
    return jobs


# ---- sizes and budgets ------------------------------------------------------------------

def split_sizes(cfg: dict, task_name: str, shot) -> Dict[str, Optional[int]]:
    """Examples per seed in the train, dev and test parts of (task, shot) under the config's
    protocol (replicate/splits.py); None where the config alone does not say (a full-data
    train part, an uncapped test set)."""
    from .splits import FULL, Protocol, effective_caps
    from .tasks import TASKS

    protocol = Protocol(**cfg["protocol"])
    task = TASKS.get(task_name)
    if protocol.scheme == "mp2":
        if task.kind == "classification" and task.num_labels > protocol.many_labels:
            n = protocol.per_label_when_many * task.num_labels
        else:
            n = int(shot)
        return {"train": n, "dev": n, "test": protocol.test_cap}
    caps = effective_caps(protocol)
    return {"train": None if shot == FULL else int(shot), "dev": caps["dev"], "test": caps["test"]}


def checks_in(first: int, epochs: int, every: int) -> int:
    """Dev checks of a stage of ``epochs`` epochs from epoch ``first``: every ``every``-th
    epoch and the stage's last (train.GroupTrainer.fit)."""
    last = first + epochs - 1
    return sum(1 for e in range(first, last + 1) if e % every == 0 or e == last)


def stages_of(mcfg) -> List[Tuple[int, bool]]:
    """(epochs, evaluated on dev) per training stage, as the method's ``stages`` builds them:
    MP2's router stage then its prompt stage; SPoT retrieval's probe (no dev) then transfer."""
    if hasattr(mcfg, "stage1_epochs"):
        out = [(mcfg.stage1_epochs, True)]
        if mcfg.epochs > mcfg.stage1_epochs:
            out.append((mcfg.epochs - mcfg.stage1_epochs, True))
        return out
    if hasattr(mcfg, "probe_epochs"):
        return [(mcfg.probe_epochs, False), (mcfg.epochs, True)]
    return [(mcfg.epochs, True)]


def gradient_budget(stages: List[Tuple[int, bool]], eval_every: int, n_train: Optional[int],
                    n_dev: Optional[int], n_test: Optional[int], seeds: int, length: int) -> Dict[str, int]:
    """Positions of a gradient job: every training example each epoch, forward and backward;
    each dev check over the dev set; each test (after every selecting stage but the last of
    several, and at the end) over the test set; for every seed. An unknown size counts 0."""
    epochs = sum(e for e, _ in stages)
    checks, first = 0, 1
    for e, selects in stages:
        checks += checks_in(first, e, eval_every) if selects else 0
        first += e
    tests = 1 + (sum(1 for _, selects in stages[:-1] if selects) if len(stages) > 1 else 0)
    per_seed_train = epochs * (n_train or 0) * length
    return {"fwd_train": per_seed_train * seeds, "bwd": per_seed_train * seeds,
            "fwd_eval": (checks * (n_dev or 0) + tests * (n_test or 0)) * length * seeds,
            "checks": checks, "tests": tests}


def black_box_budget(mcfg, n_train: Optional[int], n_dev: Optional[int], n_test: Optional[int], seeds: int,
                     length: int) -> Dict[str, int]:
    """Positions of a black-box job, forward only: ``budget`` calls per seed, each over the
    seed's training set (an upper bound: CMA-ES runs whole generations); a dev check every
    ``eval_every`` calls of each stage (and at its end); a test per stage (MP2's two)."""
    router = getattr(mcfg, "router_budget", None)
    if router is not None:
        checks = math.ceil(router / mcfg.router_eval_every)
        rest = mcfg.budget - router
        checks += math.ceil(rest / mcfg.eval_every) if rest > 0 else 0
        tests = 2 if rest > 0 else 1
    else:
        checks, tests = math.ceil(mcfg.budget / mcfg.eval_every), 1
    return {"fwd_train": mcfg.budget * (n_train or 0) * length * seeds, "bwd": 0,
            "fwd_eval": (checks * (n_dev or 0) + tests * (n_test or 0)) * length * seeds,
            "checks": checks, "tests": tests}


def positions_per_example(mcfg) -> int:
    """max_length (prompt slots included); a seq2seq job's decoder positions added."""
    extra = mcfg.max_target_length if getattr(mcfg, "formulation", "mrc") == "seq2seq" else 0
    return mcfg.max_length + extra


def _trained_count(counts: Dict[str, int]) -> int:
    """One seed's trained parameters from ``Method.trainable_parameters`` (ComPT's "prompt"
    is the sum of its parts)."""
    parts = {k: v for k, v in counts.items() if k not in ("prompt", "head")}
    if "prompt" in counts and parts and sum(parts.values()) == counts["prompt"]:
        return counts["prompt"] + counts.get("head", 0)
    return sum(counts.values())


def _unknown(job: Job, sizes: Dict[str, Optional[int]], task: str) -> None:
    for part in ("train", "dev", "test"):
        if sizes[part] is None:
            job.unknown.append((f"{part} size", task))


def train_job(cfg: dict, g) -> Job:
    from .backbones import BACKBONES
    from .config import method_overrides
    from .methods import METHODS

    method = METHODS.get(g.method)
    mcfg = method.job_config(method.make_config(method_overrides(cfg, g.method, g.task, g.shot)), g.shot)
    seeds = len(cfg["grid"]["seeds"])
    sizes = split_sizes(cfg, g.task, g.shot)
    length = positions_per_example(mcfg)
    job = Job("train", f"train {g.method} {g.task} shot{g.shot}", g.backbone, cells=seeds, length=length)
    _unknown(job, sizes, g.task)
    if method.paradigm == "black-box":
        budget = black_box_budget(mcfg, sizes["train"], sizes["dev"], sizes["test"], seeds, length)
    else:
        budget = gradient_budget(stages_of(mcfg), mcfg.eval_every, sizes["train"], sizes["dev"], sizes["test"],
                                 seeds, length)
        batch = mcfg.batch_size or sizes["train"] or 0
        job.batch_positions = batch * (seeds if method.seed_batched else 1) * length
    job.fwd_train, job.bwd, job.fwd_eval = budget["fwd_train"], budget["bwd"], budget["fwd_eval"]
    counts = method.trainable_parameters(BACKBONES.get(g.backbone), mcfg)
    job.weight_grads = "backbone" in counts
    job.trained_params = _trained_count(counts) * (seeds if method.seed_batched else 1)
    job.eval_batch_positions = mcfg.eval_batch_size * length
    return job


def task_set_job(cfg: dict, tsg) -> Job:
    """A multi-task job (multitask.py): one stream of every task's training examples per seed."""
    from .backbones import BACKBONES
    from .config import method_overrides
    from .methods import METHODS

    method = METHODS.get(tsg.method)
    mcfg = method.job_config(method.make_config(method_overrides(cfg, tsg.method, shot=tsg.shot)), tsg.shot)
    seeds = len(cfg["grid"]["seeds"])
    length = positions_per_example(mcfg)
    job = Job("train-set", f"train-set {tsg.method} shot{tsg.shot} ({len(tsg.tasks)} tasks)", tsg.backbone,
              cells=seeds * len(tsg.tasks), length=length)
    totals = {"train": 0, "dev": 0, "test": 0}
    for task in tsg.tasks:
        sizes = split_sizes(cfg, task, tsg.shot)
        _unknown(job, sizes, task)
        for part in totals:
            totals[part] += sizes[part] or 0
    budget = gradient_budget([(mcfg.epochs, True)], mcfg.eval_every, totals["train"], totals["dev"], totals["test"],
                             seeds, length)
    job.fwd_train, job.bwd, job.fwd_eval = budget["fwd_train"], budget["bwd"], budget["fwd_eval"]
    job.trained_params = _trained_count(method.trainable_parameters(BACKBONES.get(tsg.backbone), mcfg)) * seeds
    job.batch_positions = (mcfg.batch_size or totals["train"]) * seeds * length
    job.eval_batch_positions = mcfg.eval_batch_size * length
    return job


def pretrain_trained_params(pcfg, spec) -> int:
    """Trained parameters of a pre-training (pretrain.build_model): routers, z, A and the head
    of modular prompts; one prompt, one per task, or MPT's P*, u, v."""
    d, n_tasks, length = spec.d_model, len(pcfg.tasks), pcfg.prompt_length
    if pcfg.prompt in ("shallow", "deep"):
        depth = spec.n_layers if pcfg.prompt == "deep" else 1
        k, dim = pcfg.n_prompts, pcfg.intrinsic_dim
        return n_tasks * depth * k + depth * k * dim + depth * dim * length * d + 2 * d
    if pcfg.prompt == "single":
        return length * d + 2 * d
    if pcfg.prompt == "per-task":
        return n_tasks * length * d + 2 * d
    return length * d + n_tasks * (length + d) + 2 * d  # mpt: P*, u_k, v_k


def pretrain_job(cfg: dict, name: str, backbone: str) -> Job:
    """A pre-training (pretrain.run_pretraining): ``steps`` batches forward and backward (a
    distilling run also its teachers' forward), a dev check over every task's dev slice each
    ``eval_every`` steps and at the last (the slice: ``dev_cap``, else ``dev_max`` as a bound)."""
    from .backbones import BACKBONES
    from .pretrain_config import make_pretrain_config

    pcfg = make_pretrain_config(name, cfg["pretraining"][name] or {})
    length = positions_per_example(pcfg)
    job = Job("pretrain", f"pretrain {name}", backbone, length=length)
    per_step = pcfg.batch_size * length
    job.fwd_train = job.bwd = pcfg.steps * per_step
    caps = [c for c in (pcfg.dev_cap, pcfg.dev_max) if c is not None]
    checks = pcfg.steps // pcfg.eval_every + (1 if pcfg.steps % pcfg.eval_every else 0)
    if caps:
        job.fwd_eval = checks * len(pcfg.tasks) * min(caps) * length
    else:
        job.unknown.append(("dev slice (no dev_cap or dev_max) of pre-training", name))
    if pcfg.distill != "none":
        job.fwd_eval += pcfg.steps * per_step
    job.trained_params = pretrain_trained_params(pcfg, BACKBONES.get(backbone))
    job.batch_positions = per_step
    job.eval_batch_positions = pcfg.eval_batch_size * length
    return job


# ---- time and memory ----------------------------------------------------------------------

def flops_per_position(spec, length: int, mode: str) -> float:
    """FLOPs one position costs in ``spec``'s backbone at ``length`` positions per example:
    forward 2 x 12 d^2 (layer weights, feed-forward 4d) + 4 L d (attention's two products) per
    layer; "train" twice that (backward to the activations), "train-full" three times (also
    to the weights: model tuning), "eval" once."""
    forward = spec.n_layers * (24 * spec.d_model ** 2 + 4 * length * spec.d_model)
    return forward * {"eval": 1, "train": 2, "train-full": 3}[mode]


def load_step_times(path: Optional[str] = None) -> dict:
    """The measurements ``bench/step_times.py`` wrote (ConfigError, one line, if unreadable)."""
    where = Path(path) if path else STEP_TIMES
    try:
        record = json.loads(where.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"step times {where}: cannot be read ({e}); run python bench/step_times.py") from None
    if not isinstance(record, dict) or not record.get("shapes") or not record.get("bf16_matmul_peak_flops"):
        raise ConfigError(f"step times {where}: no shapes or peak; run python bench/step_times.py")
    return record


def flop_rates(step_times: dict, spec) -> Tuple[float, float, str]:
    """(train, eval) FLOP/s achieved on the measuring CPU for ``spec``'s shape, and where they
    come from: its own measurement, else the largest measured shape of its family."""
    shapes = step_times["shapes"]
    if spec.name in shapes:
        s = shapes[spec.name]
        return s["train_flop_rate"], s["eval_flop_rate"], "measured"
    family = lambda arch: "t5" if arch == "t5" else "bert"  # noqa: E731  (CPT's encoder is a BERT)
    same = [n for n, s in shapes.items() if family(s["arch"]) == family(spec.arch)] or list(shapes)
    nearest = max(same, key=lambda n: shapes[n]["d_model"] ** 2 * shapes[n]["n_layers"])
    s = shapes[nearest]
    return s["train_flop_rate"], s["eval_flop_rate"], f"rate of {nearest}"


def gpu_ratio(step_times: dict, gpu: str) -> float:
    """CPU seconds -> GPU seconds: the CPU's measured bf16 matmul peak over the GPU's nominal peak."""
    return step_times["bf16_matmul_peak_flops"] / GPUS[gpu][1]


def cpu_seconds(job: Job, step_times: dict) -> float:
    """Seconds the job's positions take on the measuring CPU (0 for jobs without a backbone)."""
    from .backbones import BACKBONES

    if job.kind not in GPU_KINDS:
        return 0.0
    spec = BACKBONES.get(job.backbone)
    train_rate, eval_rate, _ = flop_rates(step_times, spec)
    train_mode = "train-full" if job.weight_grads else "train"
    backward = job.bwd * flops_per_position(spec, job.length, train_mode) / train_rate
    forward_only = (job.fwd_train - job.bwd) + job.fwd_eval  # black-box calls, dev, test, teachers
    return backward + forward_only * flops_per_position(spec, job.length, "eval") / eval_rate


def job_cpu_seconds(job: Job, step_times: dict) -> float:
    """A job's seconds on the measuring CPU, its process start-up included (``job_start_seconds``
    of step_times.json: a fresh interpreter's imports of a training job; 0 where not measured).
    Splits and data jobs count 0: they load no backbone and take seconds."""
    if job.kind not in GPU_KINDS:
        return 0.0
    return cpu_seconds(job, step_times) + step_times.get("job_start_seconds", 0.0)


def longest_chain(jobs: Dict[tuple, Job], step_times: dict) -> Tuple[float, List[tuple]]:
    """The longest path of the plan's DAG in ``job_cpu_seconds``: no number of cores finishes
    the plan sooner. (seconds, the path's keys, first job first)."""
    memo: Dict[tuple, Tuple[float, List[tuple]]] = {}

    def finish(key: tuple) -> Tuple[float, List[tuple]]:
        if key not in memo:
            job = jobs[key]
            before = max((finish(k) for k in job.after if k in jobs), default=(0.0, []), key=lambda t: t[0])
            memo[key] = (before[0] + job_cpu_seconds(job, step_times), before[1] + [key])
        return memo[key]

    return max((finish(k) for k in jobs), default=(0.0, []), key=lambda t: t[0])


def cpu_wall_seconds(jobs: Dict[tuple, Job], step_times: dict, cores: int) -> Tuple[float, float, float]:
    """(core-seconds, longest chain, wall-time estimate) of ``jobs`` on ``cores`` cores of the
    measuring CPU, one thread a job: the estimate is the larger of the work spread evenly over
    the cores and the longest chain (a lower bound; a scheduler that keeps every core busy
    while jobs are ready finishes within their sum, Graham's bound)."""
    work = sum(job_cpu_seconds(j, step_times) for j in jobs.values())
    chain = longest_chain(jobs, step_times)[0]
    return work, chain, max(work / cores, chain)


def gpu_hours(job: Job, step_times: dict, gpu: str = "h100") -> float:
    return cpu_seconds(job, step_times) * gpu_ratio(step_times, gpu) / 3600


def backbone_params(spec) -> int:
    return spec.total_params or spec.n_layers * 12 * spec.d_model ** 2 + spec.vocab_size * spec.d_model


def activation_bytes(spec, positions: int, length: int, layers: int) -> int:
    """Activations a batch of ``positions`` keeps over ``layers`` layers with 16-bit tensors:
    34 d + 5 heads L bytes per position and layer (Korthikanti et al. 2022, no recomputation)."""
    return layers * positions * (34 * spec.d_model + 5 * spec.n_heads * length)


def memory_bytes(job: Job) -> int:
    """Parameters (fp32), the trained ones' gradients and AdamW state, and the larger of a
    training batch's activations (every layer) and an evaluation batch's (two layers: nothing
    is kept for a backward)."""
    from .backbones import BACKBONES

    if job.kind not in GPU_KINDS:
        return 0
    spec = BACKBONES.get(job.backbone)
    trained = backbone_params(spec) if job.weight_grads else job.trained_params
    acts = max(activation_bytes(spec, job.batch_positions, job.length, spec.n_layers),
               activation_bytes(spec, job.eval_batch_positions, job.length, 2))
    return backbone_params(spec) * PARAM_BYTES + trained * TRAINED_BYTES + acts


# ---- the plan -------------------------------------------------------------------------------

@dataclass
class Plan:
    jobs: Dict[tuple, Job]          # every target's jobs, each once
    by_target: Dict[str, List[tuple]]


def make_plan(cfg: dict, targets: List[str]) -> Plan:
    check_targets(targets)
    jobs: Dict[tuple, Job] = {}
    by_target = {}
    for t in dict.fromkeys(targets):
        own = expand_jobs(cfg, target_needs(cfg, t))
        by_target[t] = list(own)
        for key, job in own.items():
            jobs.setdefault(key, job)
    return Plan(jobs, by_target)


def counts_by_kind(jobs: Iterable[Job]) -> Dict[str, int]:
    out = {k: 0 for k in KINDS}
    for j in jobs:
        out[j.kind] += 1
    return out


def _count(n: float) -> str:
    for div, suffix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.3g}{suffix}"
    return f"{n:.0f}"


def summary_line(label: str, jobs: List[Job], step_times: dict, gpu: str) -> str:
    counts = counts_by_kind(jobs)
    kinds = ", ".join(f"{counts[k]} {KINDS[k][counts[k] != 1]}" for k in KINDS if counts[k])
    cpu = sum(cpu_seconds(j, step_times) for j in jobs) / 3600
    return (f"{label}: {len(jobs)} jobs{f' ({kinds})' if kinds else ''}, {sum(j.cells for j in jobs)} cells, "
            f"{_count(sum(j.fwd for j in jobs))} forward / {_count(sum(j.bwd for j in jobs))} backward positions, "
            f"{_hours(cpu * gpu_ratio(step_times, gpu))} GPU-hours on {GPUS[gpu][0]} (estimated from CPU step times; "
            f"{_hours(cpu)} hours on the measuring CPU)")


def _hours(h: float) -> str:
    """Hours with three significant digits below 100, whole hours with thousands separators above."""
    return f"{h:,.0f}" if h >= 100 else f"{h:.3g}"


def cpu_line(label: str, jobs: Dict[tuple, Job], step_times: dict, cores: int) -> str:
    """The plan's time on ``cores`` cores like the measuring CPU's, one thread a job."""
    work, chain, wall = cpu_wall_seconds(jobs, step_times, cores)
    start = step_times.get("job_start_seconds")
    paying = sum(1 for j in jobs.values() if j.kind in GPU_KINDS)
    start_part = (f"{paying} x {start:.1f} s of process start-up" if start is not None
                  else "process start-up not measured (re-run bench/step_times.py)")
    path = longest_chain(jobs, step_times)[1]
    return (f"{label} on {cores} core{'s' if cores != 1 else ''} of the measuring CPU, a thread a job: about "
            f"{_duration(wall)} ({_duration(work)} of core time: {_duration(work - paying * (start or 0))} of "
            f"positions, {start_part}; the longest chain of jobs, {_duration(chain)}: "
            f"{' -> '.join(jobs[k].name for k in path if jobs[k].kind in GPU_KINDS) or 'none'})")


def _duration(seconds: float) -> str:
    """Whole minutes up to two hours, then hours up to two days, then days."""
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:,.0f} days"


def render(plan: Plan, step_times: dict, gpu: str = "h100", budget_hours: Optional[float] = None,
           config_name: str = "", cores: int = 2) -> str:
    """The plan as plain-text tables: by kind, by job, the budget check, the summary, and the assumptions."""
    import pandas as pd

    from .backbones import BACKBONES

    jobs = list(plan.jobs.values())
    ratio = gpu_ratio(step_times, gpu)
    if not jobs:
        return "\n".join(summary_line(t, [], step_times, gpu) + " (the config fills no row of it)"
                         for t in plan.by_target)
    rows = []
    for j in jobs:
        rows.append({"kind": j.kind, "job": j.name, "cells": j.cells, "L": j.length or "",
                     "fwd": j.fwd, "bwd": j.bwd, "GPU-h": gpu_hours(j, step_times, gpu),
                     "mem GiB": memory_bytes(j) / 2 ** 30})
    df = pd.DataFrame(rows)
    out = [f"plan of {', '.join(plan.by_target)}" + (f" ({config_name})" if config_name else "")
           + f": {len(jobs)} jobs, offline; positions are upper bounds, GPU-hours and memory estimates", ""]
    by_kind = df.groupby("kind", sort=False).agg(
        jobs=("job", "size"), cells=("cells", "sum"), fwd=("fwd", "sum"), bwd=("bwd", "sum"),
        gpu_h=("GPU-h", "sum"), mem=("mem GiB", "max"))
    by_kind = by_kind.reindex([k for k in KINDS if k in by_kind.index])
    shown = pd.DataFrame({"jobs": by_kind["jobs"], "cells": by_kind["cells"],
                          "forward positions": by_kind["fwd"].map(_count),
                          "backward positions": by_kind["bwd"].map(_count),
                          f"GPU-hours ({GPUS[gpu][0]})": by_kind["gpu_h"].map(_hours),
                          "max memory GiB": by_kind["mem"].map(_gib_or_dash)})
    shown.index.name = "kind"
    out += ["By kind:", shown.to_string(), ""]
    per_job = df.sort_values("GPU-h", ascending=False, kind="stable")
    per_job = pd.DataFrame({"kind": per_job["kind"], "job": per_job["job"], "cells": per_job["cells"],
                            "L": per_job["L"], "forward": per_job["fwd"].map(_count),
                            "backward": per_job["bwd"].map(_count),
                            "GPU-hours": per_job["GPU-h"].map(_hours),
                            "memory GiB": per_job["mem GiB"].map(_gib_or_dash)})
    out += ["Per job (by GPU-hours):", per_job.to_string(index=False), ""]
    if budget_hours is not None:
        fit = []
        for t, keys in plan.by_target.items():
            hours = sum(gpu_hours(plan.jobs[k], step_times, gpu) for k in keys)
            fit.append({"target": t, "jobs": len(keys), "GPU-hours": _hours(hours),
                        "fits": "yes" if hours <= budget_hours else "no"})
        out += [f"Budget {budget_hours:g} GPU-hours ({GPUS[gpu][0]}; each target's own jobs, shared ones counted "
                "once per target):", pd.DataFrame(fit).to_string(index=False), ""]
    for t, keys in plan.by_target.items():
        out.append(summary_line(t, [plan.jobs[k] for k in keys], step_times, gpu))
        out.append(cpu_line(t, {k: plan.jobs[k] for k in keys}, step_times, cores))
    if len(plan.by_target) > 1:
        out.append(summary_line("all targets", jobs, step_times, gpu))
        out.append(cpu_line("all targets", plan.jobs, step_times, cores))
    out.append("")
    unknown: Dict[str, set] = {}
    for j in jobs:
        for what, of in j.unknown:
            unknown.setdefault(what, set()).add(of)
    backbones = sorted({j.backbone for j in jobs if j.backbone})
    sources = {b: flop_rates(step_times, BACKBONES.get(b))[2] for b in backbones}
    out += [
        "Assumptions (an estimate, not a measurement of these jobs):",
        "- positions are upper bounds: every example counts max_length (prompt slots included; seq2seq adds "
        "max_target_length), where batches pad to their longest; black-box calls count the whole budget",
        "- forward positions include dev checks and tests (and a distilling pre-training's teachers); backward: "
        "training steps only",
        f"- time: positions x FLOPs per position (24 d^2 + 4 L d per layer forward, x2 training, x3 model tuning) "
        f"/ the FLOP rate step_times.json measured for the backbone's shape "
        f"({', '.join(f'{b}: {s}' for b, s in sources.items()) or 'none'}) on {step_times.get('machine', '?')}, "
        f"{step_times.get('threads', '?')} thread(s), torch {step_times.get('torch', '?')}, "
        f"{step_times.get('date', '?')}",
        f"- CPU -> GPU: x {ratio:.3g} = CPU bf16 matmul peak {step_times['bf16_matmul_peak_flops'] / 1e9:.1f} GFLOP/s "
        f"/ {GPUS[gpu][0]} nominal dense {GPUS[gpu][2]} peak {GPUS[gpu][1] / 1e12:g} TFLOP/s, assuming both reach the "
        "same fraction of their peak",
        "- memory: fp32 parameters + gradients and AdamW state of the trained ones (12 bytes each) + one batch's "
        "16-bit activations (34 d + 5 heads L bytes per position and layer; a seed-batched step holds every seed's "
        "batch) at max_length positions: an estimate, and an upper bound where batches pad to less",
        "- splits, pre-training data and the data fetch run on CPU (0 GPU-hours); table and figure jobs are not "
        "counted; every job counts as not yet run",
        "- CPU minutes: the same positions at the measured rates plus each training and pre-training job's process "
        "start-up (job_start_seconds), one thread a job; the wall time is the larger of the work over the cores and "
        "the longest chain of jobs (a lower bound: it assumes every core busy while a job is ready); splits, data, "
        "table and figure jobs count 0",
    ]
    if unknown:
        out.append("- left out of the sums (the config does not give the size): "
                   + "; ".join(f"{what} of {', '.join(sorted(of))}" for what, of in sorted(unknown.items())))
    return "\n".join(out)


def _gib_or_dash(n: float) -> str:
    return f"{n:.1f}" if n else "-"
