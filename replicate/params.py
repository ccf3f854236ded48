"""Tunable-parameter counts of a method in a paper's setup, from the method's real modules.

The count instantiates the method's own trainable modules on PyTorch's meta device with the
backbone's dimensions (no weights, no download) and sums their sizes. ``trainable`` follows
the papers' convention: the prompt parameters (the backbone's, for model tuning); the MRC
span head MP2 trains beside them is reported separately as ``head``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from .errors import ReplicateError


class NotBuilt(ReplicateError):
    """The method is in the paper's tables but the harness does not implement it yet."""


@dataclass(frozen=True)
class PaperSetup:
    name: str       # as the papers print it
    backbone: str
    prompt_length: int
    mrc_head: bool  # MP2 casts tasks to MRC with a span head; the T5 papers generate text
    seeds: int      # runs per cell that the paper's mean and std are over
    where: str
    # Training epochs per method where the paper states them (the diff names a run that trains
    # for another number); methods missing here have no stated budget.
    epochs: Dict[str, int] = field(default_factory=dict)
    # A method's config fields as the paper's (or its code's) setup has them, where they change
    # its count: prompt_length here overrides the setup's; --prompt-length overrides both.
    method_fields: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    # Tasks trained together by the paper's multi-task methods (ComPT: GLUE's 8, its Table 1).
    task_set_size: int = 1


PAPER_SETUPS: Dict[str, PaperSetup] = {
    # MP2 Appendix A.2: MP2 with gradient descent is tuned for 1K epochs (the baselines' budget is not stated)
    "mp2": PaperSetup("MP2", "cpt-large", 50, True, 5, "MP2 §4.2: CPT-large, prompt length 50",
                      {"mp2-shallow": 1000, "mp2-deep": 1000}),
    # PPT Appendix: full-model tuning and prompt tuning train for 50 epochs
    "ppt": PaperSetup("PPT", "t5-xxl", 100, False, 5, "PPT §4.1: T5-XXL (d=4096) and CPM-2, 100 soft tokens",
                      {"model-tuning": 50, "pt": 50}),
    "mpt": PaperSetup("MPT", "t5-base", 100, False, 3, "MPT §4.1: T5-base, prompt length 100",
                      method_fields={"pt": {"formulation": "seq2seq"}, "model-tuning": {"formulation": "seq2seq"},
                                     "mpt": {"formulation": "seq2seq"}}),
    # ComPT's PT as its code runs it (configs/crosspt/PT.json:66-67): 50 tokens through an MLP prompt
    # encoder (encoders.py:230-268; hidden size d); the paper prints no count for it.
    # ComPT's compositions (§2.2, §3.2) over GLUE's 8 tasks (Table 1): 20-token prompts (MCAT 10),
    # each through its own MLP encoder, M sources (Fig 5's best: SSUM and MCAT 2, MSUM 3), a
    # private prompt per task and a task x source router; the paper prints no count.
    "compt": PaperSetup("ComPT", "t5-base", 100, False, 3,
                        "ComPT §3.2: T5-base; its code's PT (configs/crosspt/PT.json): 50 tokens through an MLP "
                        "encoder; SSUM, MSUM, MCAT over GLUE's 8 tasks",
                        method_fields={"pt": {"formulation": "seq2seq", "prompt_length": 50, "prompt_encoder": "mlp"},
                                       "compt-ssum": {"formulation": "seq2seq", "prompt_length": 20, "n_sources": 2},
                                       "compt-msum": {"formulation": "seq2seq", "prompt_length": 20, "n_sources": 3},
                                       "compt-mcat": {"formulation": "seq2seq", "prompt_length": 10, "n_sources": 2}},
                        task_set_size=8),
}


def count(paper: str, method_name: str, backbone: Optional[str] = None,
          prompt_length: Optional[int] = None) -> dict:
    from . import published
    from .backbones import BACKBONES
    from .methods import METHODS

    if paper not in PAPER_SETUPS:
        raise ReplicateError(f"unknown paper {paper!r}; known: {', '.join(PAPER_SETUPS)}")
    setup = PAPER_SETUPS[paper]
    if method_name not in METHODS:
        in_paper = {r["method"] for r in published.rows(paper)}
        if method_name in in_paper:
            raise NotBuilt(f"method {method_name!r} of {paper} is not built yet; built: {', '.join(METHODS.names())}")
        METHODS.get(method_name)  # raises the unknown-method error
    method = METHODS.get(method_name)
    spec = BACKBONES.get(backbone or setup.backbone)
    fields = dict(setup.method_fields.get(method_name, {}))
    length = fields.pop("prompt_length", None)
    length = prompt_length or length or setup.prompt_length
    overrides = {"prompt_length": length} if "prompt_length" in method.config_cls.__dataclass_fields__ else {}
    overrides.update(fields)
    if method.multi_task:
        counts = method.trainable_parameters(spec, method.make_config(overrides), n_tasks=setup.task_set_size)
    else:
        counts = method.trainable_parameters(spec, method.make_config(overrides))
    trainable = counts.get("backbone", 0) + counts.get("prompt", 0)
    out = {
        "paper": paper,
        "method": method_name,
        "backbone": spec.name,
        "prompt_length": length if overrides else None,
        "trainable": trainable,
        "setup": setup.where,
    }
    if setup.mrc_head:
        out["head"] = counts["head"]
        out["trainable_with_head"] = trainable + counts["head"]
    if "backbone" in counts:
        out["note"] = "backbone size as published for this backbone (its weights are not counted here)"
    if method.multi_task:
        cfg = method.make_config(overrides)
        out.update(tasks=setup.task_set_size, n_sources=cfg.n_sources, parts={k: counts[k] for k in (
            "sources", "private", "router") if k in counts})
        out["note"] = (f"{cfg.n_sources} source prompts and one private prompt per task ({setup.task_set_size} "
                       "tasks), each through its own MLP encoder (all of it trains), and the tasks x sources router; "
                       "the paper prints no count")
    elif overrides.get("prompt_encoder", "none") != "none":
        cfg = method.make_config(overrides)
        rows = length * spec.d_model
        out["prompt_encoder"] = cfg.prompt_encoder
        out["prompt_rows"], out["prompt_encoder_params"] = rows, trainable - rows
        out["note"] = (f"trainable counts the {length} prompt rows and the {cfg.prompt_encoder.upper()} prompt encoder "
                       "they pass through, all of which train; the paper prints no count for this row")
    if hasattr(method, "stage_counts"):
        from .tables import format_count

        stages = method.stage_counts(spec, method.make_config(overrides))
        out["stages"] = stages
        out["range"] = [stages["stage2_one_prompt_per_layer"], stages["stage2_all_prompts"]]
        out["range_printed"] = (f"{format_count(stages['stage2_one_prompt_per_layer'])}∼"
                                f"{format_count(stages['stage2_all_prompts'])}")
        out["note"] = ("tuned in two stages: stage I the routers, stage II the prompts the routers select (one to "
                       "K per layer; MP2 Table 3 prints that range); trainable counts all K")
    return out
