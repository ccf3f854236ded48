"""SPoT's retrieval, reported: per task, which source prompt each seed's few-shot probe
retrieved (SPoT §4), the similarity ranking, and the test score it reached next to SPoT's
single multi-task prompt and PT from scratch (the same cells the tables read)."""

from __future__ import annotations

import csv
import io
import statistics
from collections import Counter
from typing import Dict, List

from .config import finished_results
from .io import write_text_atomic
from .tables import CellSummary

COMPARED = ("spot-retrieval", "spot", "pt")
COLUMNS = ["task", "shot", "method", "mean", "std", "n", "retrieved", "top3"]


def report_rows(cfg: dict) -> List[Dict[str, str]]:
    """One row per (task, shot, method) of ``COMPARED`` in the grid; the retrieval rows say
    which source each seed took (count per source) and the mean similarity of the top 3."""
    grid = cfg["grid"]
    rows = []
    for task in grid["tasks"]:
        for shot in grid["shots"]:
            for method in [m for m in COMPARED if m in grid["methods"]]:
                scores, picks, sims = [], Counter(), {}
                for r in finished_results(cfg, method, task, shot):
                    scores.append(r["score"])
                    probe = next((st for st in r.get("stages", []) if "retrieved" in st), None)
                    if probe:
                        picks[probe["retrieved"]] += 1
                        for name, value in probe["similarity"]:
                            sims.setdefault(name, []).append(value)
                cell = CellSummary(scores=scores)
                top = sorted(((statistics.fmean(v), k) for k, v in sims.items()), reverse=True)[:3]
                rows.append({"task": task, "shot": str(shot), "method": method,
                             "mean": "" if cell.mean is None else f"{cell.mean:.2f}",
                             "std": "" if cell.std is None else f"{cell.std:.2f}",
                             "n": str(len(scores)),
                             "retrieved": "; ".join(f"{k} x{c}" for k, c in picks.most_common()),
                             "top3": "; ".join(f"{k} {v:.3f}" for v, k in top)})
    return rows


def write_report(cfg: dict, prefix: str) -> List[str]:
    rows = report_rows(cfg)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    md = ["# SPoT retrieval (SPoT §4) on this run's tasks", "",
          "Per seed, the source prompt nearest to the target's probe prompt (docs/methods/spot.md); scores are "
          "test mean ± sample std over the seeds that finished.", "",
          "| Task | Shot | Method | Score | n | Retrieved (seeds) | Mean similarity, top 3 |",
          "|---|---:|---|---:|---:|---|---|"]
    for r in rows:
        score = "missing" if not r["mean"] else r["mean"] + (f" ± {r['std']}" if r["std"] else "")
        md.append(f"| {r['task']} | {r['shot']} | {r['method']} | {score} | {r['n']} | {r['retrieved']} | {r['top3']} |")
    write_text_atomic(prefix + ".csv", buf.getvalue())
    write_text_atomic(prefix + ".md", "\n".join(md) + "\n")
    return [prefix + ".csv", prefix + ".md"]
