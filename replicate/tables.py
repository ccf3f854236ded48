"""Aggregate per-cell results into paper-shaped tables (Markdown, CSV, LaTeX).

A table is a list of blocks (e.g. MP2 Table 3's UNSEEN DATA and UNSEEN TASK tracks), each
with task columns plus an average, and one row per method. Each cell is mean ± std over the
seeds that finished (sample std, ddof=1), with n shown whenever fewer seeds than configured
finished; cells with no finished seed say "missing" or "failed". Nothing is dropped: every
configured (method, task) appears. The CSV is tidy and uses the published registry's
columns, so ``replicate diff`` compares it with the papers' numbers cell by cell.
"""

from __future__ import annotations

import csv
import io
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from .config import cells, result_path, split_path
from .io import git_state, read_json, write_text_atomic

CSV_COLUMNS = ["paper", "table", "block", "method", "backbone", "task", "shot", "metric", "mean", "std", "params",
               "source", "note", "n", "n_expected", "status", "setup", "run", "config_hash"]
TRACK_TITLES = {"unseen-data": "UNSEEN DATA", "unseen-task": "UNSEEN TASK"}
MAJORITY = "majority-class"
NOT_ABOVE_MAJORITY = "†"


@dataclass
class CellSummary:
    """Aggregate of one (method, task) over its seeds."""

    scores: List[float] = field(default_factory=list)
    n_expected: int = 0
    failed: int = 0
    config_hashes: set = field(default_factory=set)

    @property
    def mean(self) -> Optional[float]:
        return statistics.fmean(self.scores) if self.scores else None

    @property
    def std(self) -> Optional[float]:
        return statistics.stdev(self.scores) if len(self.scores) > 1 else None

    @property
    def status(self) -> str:
        if self.n_expected == 0:
            return "n/a"
        if len(self.scores) == self.n_expected:
            return "ok"
        if not self.scores:
            return "failed" if self.failed else "missing"
        return "partial"

    def text(self) -> str:
        if self.n_expected == 0:
            return "n/a"
        if not self.scores:
            return f"failed ({self.failed}/{self.n_expected})" if self.failed else "missing"
        s = f"{self.mean:.1f}" if self.std is None else f"{self.mean:.1f} ± {self.std:.1f}"
        if len(self.scores) < self.n_expected:
            s += f" (n={len(self.scores)}/{self.n_expected})"
        return s


def format_count(n: int) -> str:
    """Parameter counts as the papers print them: 308, 7.7K, 1.2M, 393M, 11B."""
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            v = n / div
            return f"{v:.1f}{suffix}".replace(".0" + suffix, suffix) if v < 100 else f"{v:.0f}{suffix}"
    return str(n)


@dataclass
class Table:
    name: str            # e.g. "mp2_table3"
    paper: str
    table: str
    title: str
    header: List[str]    # lines describing the setup
    blocks: List[tuple]  # (block title, [task names], metric per task, [row method ids])
    rows: List[tuple]    # (method id, label, params text)
    cells: Dict[tuple, CellSummary]  # (method, task) -> summary
    backbone: str
    shot: int
    setup: str
    run: str

    def mark(self, method: str, task: str) -> str:
        """A dagger on a method's cell whose mean is not above the majority-class reference."""
        cell, ref = self.cells[(method, task)], self.cells.get((MAJORITY, task))
        if method == MAJORITY or ref is None or cell.mean is None or ref.mean is None:
            return ""
        return NOT_ABOVE_MAJORITY if cell.mean <= ref.mean else ""

    def rows_of(self, methods: Sequence[str]) -> List[tuple]:
        return [row for row in self.rows if row[0] in methods]

    def block_avg(self, method: str, tasks: Sequence[str]) -> Optional[float]:
        means = [self.cells[(method, t)].mean for t in tasks]
        return None if any(m is None for m in means) else statistics.fmean(means)


def build_table3(cfg: dict) -> Table:
    """MP2 Table 3's layout over the configured methods and tasks, from the result files."""
    from .backbones import BACKBONES
    from .methods import METHODS
    from .tasks import TASKS

    t3 = cfg["table3"]
    spec = BACKBONES.get(t3["backbone"])
    shot = t3["shots"][0] if len(t3["shots"]) == 1 else None
    if shot is None:
        raise ValueError("table3 has one shot per table; configure a single shot")
    summaries: Dict[tuple, CellSummary] = {}
    for cell in cells(cfg):
        summary = summaries.setdefault((cell.method, cell.task), CellSummary())
        summary.n_expected += 1
        path = Path(result_path(cfg, cell))
        if not path.exists():
            continue
        result = read_json(path)
        if result.get("status") == "ok" and result.get("score") is not None:
            summary.scores.append(float(result["score"]))
            summary.config_hashes.add(result["provenance"]["config_hash"])
        else:
            summary.failed += 1

    # MP2 Table 3's blocks: track (UNSEEN DATA / UNSEEN TASK) x paradigm (gradient, black-box)
    paradigms = list(dict.fromkeys(METHODS.get(m).paradigm for m in t3["methods"]))
    blocks = []
    for track in ("unseen-data", "unseen-task"):
        tasks = [t for t in t3["tasks"] if TASKS.get(t).track == track]
        for paradigm in paradigms if tasks else ():
            methods = [m for m in t3["methods"] if METHODS.get(m).paradigm == paradigm]
            if paradigm == paradigms[0]:
                methods.append(MAJORITY)
            blocks.append((f"{TRACK_TITLES[track]} / {paradigm}", tasks, [TASKS.get(t).metric for t in tasks],
                           methods))

    rows = []
    for name in t3["methods"]:
        method = METHODS.get(name)
        counts = method.trainable_parameters(spec, method.make_config(cfg["methods"].get(name)))
        main = counts.get("backbone", 0) + counts.get("prompt", 0)
        params = f"{format_count(main)} (+{format_count(counts['head'])} head)" if main else format_count(counts["head"])
        rows.append((name, method.paper_label or name, params))

    # Reference row: accuracy of the best constant prediction on each test set (from the
    # split manifests' test label counts; the test set is the same for every seed).
    majority = {}
    for task in t3["tasks"]:
        if TASKS.get(task).kind != "classification":
            majority[(MAJORITY, task)] = CellSummary(n_expected=0)  # no label set: not applicable
            continue
        summary = CellSummary(n_expected=1)
        path = Path(split_path(cfg, task, shot, t3["seeds"][0]))
        if path.exists():
            counts = read_json(path)["label_counts"]["test"]
            summary.scores.append(100 * max(counts.values()) / sum(counts.values()))
        majority[(MAJORITY, task)] = summary
    summaries.update(majority)
    rows.append((MAJORITY, "Majority class (reference)", "0"))

    git = git_state()
    header = [
        f"run `{cfg['run']}` (setup: {cfg.get('setup', 'embedded')}), backbone `{spec.name}`, {shot}-shot, "
        f"seeds {t3['seeds']}, test cap {cfg['protocol'].get('test_cap')}",
        f"cells: mean ± sample std over seeds (n shown when fewer finished); git {git['commit'][:12]}"
        + (" (modified)" if git["dirty"] else ""),
        "majority class: accuracy of the best constant prediction on the same test set",
    ]
    return Table("mp2_table3", "mp2", "3", "MP2 Table 3 (regenerated)", header, blocks, rows, summaries,
                 spec.name, shot, cfg.get("setup", "embedded"), cfg["run"])


def _fmt(x: Optional[float]) -> str:
    return "" if x is None else f"{x:.4f}"


def to_csv(table: Table) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    params = {m: p for m, _, p in table.rows}
    for title, tasks, metrics, methods in table.blocks:
        for method in methods:
            for task, metric in zip(tasks, metrics):
                c = table.cells[(method, task)]
                w.writerow(["mp2", table.table, title, method, table.backbone, task, table.shot, metric,
                            _fmt(c.mean), _fmt(c.std), params[method], "", "", len(c.scores), c.n_expected,
                            c.status, table.setup, table.run, ";".join(sorted(c.config_hashes))])
            if method != MAJORITY or all(table.cells[(method, t)].mean is not None for t in tasks):
                avg = table.block_avg(method, tasks)
                w.writerow(["mp2", table.table, title, method, table.backbone, "avg", table.shot, "avg", _fmt(avg), "",
                            params[method], "", "mean of the block's task means", "", "",
                            "ok" if avg is not None else "incomplete", table.setup, table.run, ""])
    return buf.getvalue()


def to_markdown(table: Table) -> str:
    lines = [f"# {table.title}", ""] + [f"- {h}" for h in table.header] + [""]
    for title, tasks, metrics, methods in table.blocks:
        lines.append(f"## {title}")
        lines.append("")
        head = ["Method", "Tunable Params"] + [f"{t} ({m})" for t, m in zip(tasks, metrics)] + ["Avg"]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "|".join(["---"] * 2 + ["---:"] * (len(tasks) + 1)) + "|")
        for method, label, params in table.rows_of(methods):
            cells = [table.cells[(method, t)].text() + table.mark(method, t) for t in tasks]
            avg = table.block_avg(method, tasks)
            lines.append("| " + " | ".join([label, params] + cells + ["—" if avg is None else f"{avg:.1f}"]) + " |")
        lines.append("")
    if any(table.mark(m, t) for _, tasks, _, methods in table.blocks for m in methods for t in tasks):
        lines.append(f"{NOT_ABOVE_MAJORITY}: mean not above the majority-class reference on that task.")
        lines.append("")
    return "\n".join(lines)


def _tex_escape(s: str) -> str:
    return s.replace("\\", r"\textbackslash{}").replace("&", r"\&").replace("%", r"\%").replace("_", r"\_") \
        .replace("#", r"\#").replace("±", r"$\pm$").replace("—", "--")


def to_latex(table: Table) -> str:
    out = ["% " + table.title, *["% " + h for h in table.header], r"\begin{table*}[t]", r"\centering", r"\small"]
    for title, tasks, metrics, methods in table.blocks:
        out.append(r"\begin{tabular}{ll" + "r" * (len(tasks) + 1) + "}")
        out.append(r"\toprule")
        out.append(r"\multicolumn{%d}{c}{%s} \\" % (len(tasks) + 3, title))
        out.append(r"\midrule")
        out.append(" & ".join(["Method", "Params"] + [_tex_escape(t) for t in tasks] + ["Avg"]) + r" \\")
        out.append(" & ".join(["", ""] + [m.capitalize() + "." for m in metrics] + [""]) + r" \\")
        out.append(r"\midrule")
        for method, label, params in table.rows_of(methods):
            cells = [_tex_escape(table.cells[(method, t)].text()) + (r"$^\dagger$" if table.mark(method, t) else "")
                     for t in tasks]
            avg = table.block_avg(method, tasks)
            out.append(" & ".join([_tex_escape(label), _tex_escape(params)] + cells +
                                  ["--" if avg is None else f"{avg:.1f}"]) + r" \\")
        out.append(r"\bottomrule")
        out.append(r"\end{tabular}")
        out.append(r"\vspace{1ex}")
    out.append(r"\caption{" + _tex_escape(table.title) + r"}")
    out.append(r"\end{table*}")
    return "\n".join(out) + "\n"


def write_table(table: Table, prefix: str) -> List[str]:
    """The table as Markdown, CSV and LaTeX, and its diff against the published numbers."""
    from .diff import write_diff

    written = []
    for ext, render in (("md", to_markdown), ("csv", to_csv), ("tex", to_latex)):
        path = f"{prefix}.{ext}"
        write_text_atomic(path, render(table))
        written.append(path)
    return written + write_diff(f"{prefix}.csv", f"{prefix}.diff")
