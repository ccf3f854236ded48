"""MP2's figures, drawn from logged tensors and result files only (never by hand).

- Fig 5 (``router_dendrogram``): the upstream tasks clustered by their learned, binarised
  shallow router (MP2 §4.3: "hierarchical clustering on the router learned on 38 upstream
  tasks"). Each task's router is its K-bit pattern of selected prompts (logit > 0); tasks are
  joined by average linkage on the Hamming distance between patterns, and the tree is cut
  into at most ``n_groups`` groups (the paper: 8, A-H), each named by the families of its
  tasks. Input: the routers logged in ``pretrain.json``.
- Fig 3 (``two_stage_curves``): dev score per epoch (gradient descent) or per forward call
  (black-box tuning) across the two stages of MP2's downstream tuning, mean over seeds, with
  the stage boundary; input: the cells' ``dev.curve`` and ``stages``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Dict, List, Sequence

from .errors import DataError
from .io import read_json, write_text_atomic
from .results import read_result


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on compute nodes
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out_prefix: str) -> List[str]:
    """``fig`` as ``<prefix>.png`` and ``<prefix>.pdf``."""
    plt = _pyplot()
    written = []
    for ext in ("png", "pdf"):
        path = f"{out_prefix}.{ext}"
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=150, bbox_inches="tight")  # long task labels stay inside
        written.append(path)
    plt.close(fig)
    return written


def router_groups(tasks: Sequence[dict], routers: Sequence, n_groups: int = 8) -> Dict:
    """The binarised router patterns, the linkage and the groups of the upstream tasks."""
    import numpy as np
    from scipy.cluster.hierarchy import fcluster, linkage

    logits = np.asarray(routers, dtype=float)  # tasks x layers x K
    if logits.ndim != 3 or logits.shape[0] != len(tasks):
        raise DataError(f"routers of shape {logits.shape} do not match {len(tasks)} tasks")
    if len(tasks) < 2:
        raise DataError(f"clustering the routers needs at least 2 upstream tasks, the pre-training has {len(tasks)}")
    bits = (logits[:, 0, :] > 0).astype(float)  # the input layer's router (shallow MP2 has only it)
    link = linkage(bits, method="average", metric="hamming")
    labels = fcluster(link, t=min(n_groups, len(tasks)), criterion="maxclust")
    groups: Dict[int, List[int]] = {}
    for i, g in enumerate(labels):
        groups.setdefault(int(g), []).append(i)
    named = []
    for letter, (_, members) in zip("ABCDEFGHIJKLMNOP", sorted(groups.items(), key=lambda kv: min(kv[1]))):
        families = Counter(tasks[i]["family"] or "other" for i in members)
        top = ", ".join(f"{fam} {n}" for fam, n in families.most_common())
        named.append({"group": letter, "tasks": [tasks[i]["name"] for i in members], "families": top,
                      "patterns": sorted({"".join(str(int(b)) for b in bits[i]) for i in members})})
    return {"bits": bits.tolist(), "linkage": link.tolist(), "groups": named}


def router_dendrogram(summary_path: str, out_prefix: str, n_groups: int = 8) -> List[str]:
    """Draw Fig 5 from a shallow pre-training's ``pretrain.json``: ``<prefix>.png``,
    ``.pdf`` and ``.json`` (the patterns and groups)."""
    from scipy.cluster.hierarchy import dendrogram

    summary = read_json(summary_path)
    tasks, routers = summary["tasks"], summary["routers"]
    found = router_groups(tasks, routers, n_groups)
    group_of = {name: g["group"] for g in found["groups"] for name in g["tasks"]}
    labels = [f"{t['name']} ({t['family'] or 'other'}) [{group_of[t['name']]}]" for t in tasks]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(tasks) + 1.6))
    dendrogram(found["linkage"], labels=labels, orientation="left", ax=ax, color_threshold=None)
    ax.set_xlabel("Hamming distance between binarised routers (average linkage)")
    ax.set_title(f"Task partitions induced from the router ({summary['pretraining']}, {summary['backbone']}, "
                 f"{len(tasks)} upstream tasks)", fontsize=9)
    fig.tight_layout()
    written = _save(fig, out_prefix)
    meta = {"source": summary_path, "checkpoint_sha256": summary["checkpoint"]["sha256"], **found}
    write_text_atomic(f"{out_prefix}.json", json.dumps(meta, indent=1) + "\n")
    return written + [f"{out_prefix}.json"]


def two_stage_curves(result_paths: Sequence[str], out_prefix: str) -> List[str]:
    """Draw Fig 3: dev score per evaluated epoch (gradient descent) or forward call (black-box
    tuning), mean ± std over the seeds of each (method, task) among ``result_paths`` (seaborn's
    line and band; std with ddof=1, none for one seed), with a line at each stage boundary."""
    import pandas as pd
    import seaborn as sns

    by_cell: Dict[tuple, List[dict]] = {}
    for path in result_paths:
        r = read_result(path)
        if r.get("status") == "ok" and r.get("stages"):
            by_cell.setdefault((r["method"], r["task"]), []).append(r)
    if not by_cell:
        raise DataError("no finished two-stage result among the inputs")
    curves = pd.DataFrame([{"method": method, "task": task, "unit": results[0]["dev"].get("unit", "epoch"),
                            "step": step, "dev": value}
                           for (method, task), results in by_cell.items() for r in results
                           for step, value in r["dev"]["curve"]])
    plt = _pyplot()
    methods = sorted({m for m, _ in by_cell})
    tasks = sorted({t for _, t in by_cell})
    fig, axes = plt.subplots(len(methods), len(tasks), figsize=(2.8 * len(tasks), 2.4 * len(methods)), squeeze=False)
    for (i, method), (j, task) in ((mi, tj) for mi in enumerate(methods) for tj in enumerate(tasks)):
        ax = axes[i][j]
        results = by_cell.get((method, task))
        if not results:
            ax.set_axis_off()
            continue
        cell = curves[(curves["method"] == method) & (curves["task"] == task)]
        sns.lineplot(data=cell, x="step", y="dev", errorbar="sd", color="C0", ax=ax)
        for stage in results[0]["stages"][1:]:
            first = stage["calls"][0] if "calls" in stage else stage["epochs"][0]  # black-box: forward calls
            ax.axvline(first - 0.5, color="green", linestyle="--")
        ax.set_title(f"{method} / {task} (n={len(results)})", fontsize=8)
        ax.set_xlabel(results[0]["dev"].get("unit", "epoch"), fontsize=8)
        ax.set_ylabel(f"dev {results[0]['metric']}", fontsize=8)
    fig.tight_layout()
    written = _save(fig, out_prefix)
    points = curves.groupby(["method", "task", "unit", "step"])["dev"].agg(
        dev_mean="mean", dev_std="std", n="count").reset_index()
    points["dev_std"] = points["dev_std"].fillna(0.0)  # one seed: no spread
    write_text_atomic(f"{out_prefix}.csv",
                      points.round({"dev_mean": 3, "dev_std": 3}).to_csv(index=False, lineterminator="\n"))
    return written + [f"{out_prefix}.csv"]


def masking_heatmaps(csv_paths: Sequence[str], out_prefix: str, title: str) -> List[str]:
    """ComPT's source-prompt ablation heatmaps (Figs 3, 4, 6): one panel per masking CSV
    (``masking.masking_job``; one trained task set) and seed, rows its tasks and their
    average (the paper's last row), columns its masks in the paper's order, each cell a test
    score. Panels are per seed because a seed's source prompt i is not another seed's: the
    sources are interchangeable, and each seed's tasks pick their own (averaging "src1" over
    seeds would mix different prompts). From cross-task CSVs (Fig A1) the columns are the
    tasks whose prompt was used. Also ``<prefix>.csv``: the plotted scores."""
    import pandas as pd
    import seaborn as sns

    frames = []
    for path in csv_paths:
        frame = pd.read_csv(path)
        if frame.empty:
            raise DataError(f"{path}: no scores")
        frames.append(frame)
    plt = _pyplot()
    frames = [seed_frame for frame in frames for _, seed_frame in frame.groupby("seed", sort=True)]
    width = max(max(f["mask"].nunique(), f["prompt_task"].nunique()) for f in frames)
    fig, axes = plt.subplots(1, len(frames), figsize=(1.1 + 0.75 * width * len(frames),
                                                      0.45 * max(f["task"].nunique() for f in frames) + 1.8),
                             squeeze=False)
    tidy = []
    for ax, frame in zip(axes[0], frames):
        column = "mask" if (frame["evaluation"] == "mask").all() else "prompt_task"
        masks = list(dict.fromkeys(frame[column]))
        tasks = list(dict.fromkeys(frame["task"]))
        means = frame.groupby(["task", column])["score"].agg(["mean", "count"]).reset_index()
        grid = means.pivot(index="task", columns=column, values="mean").reindex(index=tasks, columns=masks)
        grid.loc["avg"] = grid.mean(axis=0)
        sns.heatmap(grid, annot=True, fmt=".0f", cmap="viridis", vmin=0, vmax=100, cbar=False, ax=ax)
        method, shot, seed = frame["method"].iloc[0], frame["shot"].iloc[0], frame["seed"].iloc[0]
        ax.set_title(f"{method}, shot {shot}, seed {seed}", fontsize=9)
        ax.set_xlabel("")
        ax.set_ylabel("")
        means.insert(0, "seed", seed)
        means.insert(0, "shot", shot)
        means.insert(0, "method", method)
        tidy.append(means.drop(columns="count").rename(columns={"mean": "score"}))
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    written = _save(fig, out_prefix)
    write_text_atomic(f"{out_prefix}.csv", pd.concat(tidy).round(3).to_csv(index=False))
    return written + [f"{out_prefix}.csv"]


def compt_sweep(result_paths: Sequence[str], out_prefix: str, x: str, hue: Sequence[str] = (),
                title: str = "") -> List[str]:
    """ComPT's sweeps (Figs 2, 5, 7): each run's average test score over its task set (per
    seed), against ``x`` (a config field of the runs, e.g. ``n_sources``, or ``shot``), one
    line per composition, task set and ``hue`` fields, mean and standard deviation over the
    seeds (seaborn). Also ``<prefix>.csv``: the plotted points."""
    import pandas as pd
    import seaborn as sns

    rows = []
    for path in result_paths:
        r = read_result(path)
        if r.get("status") != "ok":
            continue
        fields = r["provenance"]["settings"]["method_config"]
        if x != "shot" and x not in fields:
            raise DataError(f"{path}: its config has no field {x!r}")
        line = [fields["composition"].upper(), fields.get("task_set") or "grid tasks"]
        line += [f"{h}={fields[h]}" for h in hue]
        rows.append({"method": r["method"], "line": ", ".join(line), "x": r["shot"] if x == "shot" else fields[x],
                     "seed": r["seed"], "task": r["task"], "score": r["score"]})
    if not rows:
        raise DataError("no finished ComPT cell among the inputs")
    cells = pd.DataFrame(rows)
    per_seed = cells.groupby(["line", "method", "x", "seed"], as_index=False)["score"].mean()
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    sns.lineplot(data=per_seed, x="x", y="score", hue="line", marker="o", errorbar="sd", ax=ax)
    ax.set_xlabel(x)
    ax.set_ylabel("average test score over the task set")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    written = _save(fig, out_prefix)
    points = per_seed.groupby(["line", "method", "x"])["score"].agg(["mean", "std", "count"]).reset_index()
    write_text_atomic(f"{out_prefix}.csv", points.rename(columns={"count": "seeds"}).round(3).to_csv(index=False))
    return written + [f"{out_prefix}.csv"]
