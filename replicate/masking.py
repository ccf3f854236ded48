"""ComPT's masking evaluation (§5.1.2, Figs 3, 4, 6; Tables 5, 6, A1) and its cross-task
evaluation (Fig A1), as one DAG job on the tested prompts of a trained task set.

For each task (row) of each seed, the test set is scored again with parts of its prompt
masked (``masks_of``): one source kept (SSUM: alone, the private masked, as Fig 3's columns;
MSUM and MCAT: with the private, as Fig 4's, since either part alone is a zero prompt),
every source without the private (``all_src``), the private alone (``private``), and
everything (``total``, the tested prompt itself). A masked source drops out before the
softmax (the kept ones renormalise), a masked private prompt is zero, and a masked MCAT
source leaves the attention mask (``composition.py``). The cross-task evaluation (its own
job: it costs as much again) scores each task's full prompt on every other task's test set.

Outputs, all tidy: ``<prefix>.csv`` (seed, task, mask -> score), ``<prefix>.confusion.csv``
(gold label, answer -> count per seed, task and mask: Tables 5, 6, A1), and
``<prefix>.router.csv`` (each row's router logits and inference weights: Fig 6's weights).
"""

from __future__ import annotations

import csv
import io
import os
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Dict, List, Sequence

from .errors import ConfigError, DataError
from .io import load_torch, write_text_atomic


@dataclass(frozen=True)
class Mask:
    """Which parts of a row's prompt stay: the ``sources`` kept (indices) and the private."""

    name: str
    sources: tuple
    private: bool

    def keep_tensor(self, n_sources: int, private_in_pool: bool):
        import torch

        keep = torch.zeros(n_sources + private_in_pool, dtype=torch.bool)
        keep[list(self.sources)] = True
        if private_in_pool:
            keep[n_sources] = self.private
        return keep


def masks_of(composition: str, n_sources: int) -> List[Mask]:
    """The masks of the paper's heatmaps, in its column order."""
    every = tuple(range(n_sources))
    with_private = composition != "ssum"  # Fig 4: "each column ... combined with the private prompt"
    return ([Mask(f"src{i}", (i,), with_private) for i in every]
            + [Mask("all_src", every, False), Mask("private", (), True), Mask("total", every, True)])


MASKING_OUTPUTS = (".csv", ".confusion.csv", ".router.csv")  # after the prefix: scores, confusion counts, routers
CSV_FIELDS = ["method", "backbone", "shot", "seed", "evaluation", "task", "prompt_task", "mask", "metric", "score",
              "n"]
CONFUSION_FIELDS = ["method", "backbone", "shot", "seed", "evaluation", "task", "prompt_task", "mask", "gold",
                    "answer", "count"]
ROUTER_FIELDS = ["method", "backbone", "shot", "seed", "task", "source", "logit", "weight"]


def _csv(rows: List[dict], fields: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def answer_counts(formulation, encoder, task, encs, preds) -> Dict[str, Dict[str, int]]:
    """gold label -> answer -> count: generated strings (seq2seq) or chosen labels (MRC)."""
    details = formulation.details(encoder, encs, preds)
    if "generated" in details:
        return details["generated"]
    if task.kind != "classification":
        return {}
    out: Dict[str, Dict[str, int]] = {}
    for e, p in zip(encs, preds):
        gold = task.labels[e.label]
        answer = task.labels[p] if isinstance(p, int) and 0 <= p < len(task.labels) else str(p)
        out.setdefault(gold, {}).setdefault(answer, 0)
        out[gold][answer] += 1
    return out


EVALUATIONS = ("masking", "cross-task")


def masking_job(settings: dict, seeds: Sequence[int], split_paths: Dict[str, Sequence[str]],
                state_paths: Sequence[str], out_prefix: str, data_dir: str, device: str = "auto",
                evaluation: str = "masking") -> dict:
    """Score the task set's tested prompts: every mask of every row (``evaluation``
    "masking"), or every task's full prompt on every other task ("cross-task"); write the
    three CSVs under ``out_prefix``."""
    import torch

    from .backbones import BACKBONES, attention_for
    from .config import config_hash
    from .devices import resolve_device
    from .jobs import _log, read_manifests
    from .methods.base import method_of
    from .multitask import predict_states
    from .splits import resolve
    from .tasks import resolve_task

    if evaluation not in EVALUATIONS:
        raise ConfigError(f"evaluation must be one of {', '.join(EVALUATIONS)}, not {evaluation!r}")
    start = time.perf_counter()
    torch.set_num_threads(settings.get("threads", 1))
    device_name, gpu_lock = resolve_device(device)
    method = method_of(settings)
    if not method.multi_task:
        raise ConfigError(f"method {method.name} trains no task set: it has no masking evaluation")
    cfg = method.job_config(method.make_config(settings["method_config"]), settings["shot"])
    spec = BACKBONES.get(settings["backbone"])
    c_hash = config_hash(settings)
    names = list(settings["tasks"])
    files = settings.get("data_files") or {}
    backbone, tokenizer = spec.load(local_dir=settings.get("backbone_dir"), seq2seq=method.seq2seq(cfg),
                                    attention=attention_for(device_name))
    backbone.requires_grad_(False)
    tasks, encoders, formulations, tests = [], [], [], []
    for name in names:
        task = method.task_view(resolve_task(name, {name: files[name]} if files.get(name) else None), cfg)
        pools = task.load_pools(data_dir)
        encoder = method.encoder(tokenizer, task, cfg, spec)
        per_seed = []
        for m in read_manifests(settings, name, seeds, split_paths[name]):
            per_seed.append([encoder.encode(ex) for ex in resolve(m, pools)["test"]])
        tasks.append(task)
        encoders.append(encoder)
        formulations.append(method.formulation(cfg, task))
        tests.append(per_seed)
    holder = SimpleNamespace(backbone=backbone, spec=spec)
    masks = masks_of(cfg.composition, cfg.n_sources)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    scores, confusion, router = [], [], []
    base = {"method": method.name, "backbone": spec.name, "shot": settings["shot"]}
    for s, (seed, path) in enumerate(zip(seeds, state_paths)):
        record = load_torch(path, "states", "delete it and rerun the training job", map_location="cpu",
                            weights_only=False)
        if record.get("settings_hash") != c_hash:
            raise ConfigError(f"states {path}: trained with other settings ({record.get('settings_hash')}) than "
                              f"this job's ({c_hash}); rerun the training job")
        if record.get("status") != "ok":
            _log(f"seed {seed}: its training failed; no masking evaluation")
            continue
        states = record["states"]
        # rows: every (task, mask), or every (prompt task, other task) pair
        if evaluation == "masking":
            rows = [("mask", t, t, mask) for t in range(len(names)) for mask in masks]
        else:
            rows = [("cross-task", b, a, None) for a in range(len(names)) for b in range(len(names)) if a != b]
        preds = predict_states(method, cfg, holder, formulations, [states[names[a]] for _, _, a, _ in rows],
                               [b for _, b, _, _ in rows], [tests[b][s] for _, b, _, _ in rows], pad,
                               torch.device(device_name), [m for *_, m in rows])
        for (kind, b, a, mask), p in zip(rows, preds):
            task, encs = tasks[b], tests[b][s]
            metrics = formulations[b].score(encoders[b], encs, p)
            where = {**base, "seed": seed, "evaluation": kind, "task": names[b], "prompt_task": names[a],
                     "mask": mask.name if mask else "total"}
            scores.append({**where, "metric": task.metric, "score": round(metrics[task.metric], 4), "n": len(encs)})
            for gold, answers in answer_counts(formulations[b], encoders[b], task, encs, p).items():
                for answer, count in answers.items():
                    confusion.append({**where, "gold": gold, "answer": answer, "count": count})
        for t, name in enumerate(names):
            logits = states[name]["router"]
            weights = torch.softmax(torch.zeros_like(logits) if cfg.weights == "constant" else logits, dim=-1)
            for k, (logit, weight) in enumerate(zip(logits.tolist(), weights.tolist())):
                label = f"src{k}" if k < cfg.n_sources else "private"
                router.append({**base, "seed": seed, "task": name, "source": label, "logit": round(logit, 5),
                               "weight": round(weight, 5)})
    if not scores:
        raise DataError(f"no seed of {method.name} at shot {settings['shot']} finished training: nothing to mask")
    os.makedirs(os.path.dirname(out_prefix) or ".", exist_ok=True)
    for ext, rows, fields in zip(MASKING_OUTPUTS, (scores, confusion, router),
                                 (CSV_FIELDS, CONFUSION_FIELDS, ROUTER_FIELDS)):
        write_text_atomic(f"{out_prefix}{ext}", _csv(rows, fields))
    if gpu_lock is not None:
        gpu_lock.close()
    _log(f"{evaluation}: {len(scores)} scores in {time.perf_counter() - start:.1f}s -> {out_prefix}.csv")
    return {"scores": len(scores), "confusion": len(confusion)}
