"""The papers' orderings, checked on a regenerated MP2 Table 3 (its CSV).

MP2 Table 3 (and PPT Table 4) hold these: a pre-trained prompt beats PT from scratch; MP2
beats SPoT, which beats PT; deep MP2 beats shallow; black-box MP2 beats BBTv2, which beats
BBT. Each claim is checked per block (track x paradigm) on the block's average, and per
task with Welch's one-sided t-test from the two cells' mean, std and seed count (scipy), so
that a verdict says how much of it rests on differences the seeds can tell apart. Nothing
here is typed in: every verdict is computed from the table the run wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

# (claim, paradigm, [(better, worse), ...]): each pair must hold for the claim to hold
CLAIMS: Tuple[Tuple[str, str, Tuple[Tuple[str, str], ...]], ...] = (
    ("pre-trained prompt > PT", "Gradient Descent", (("spot", "pt"), ("ppt-unified", "pt"))),
    ("MP2 > SPoT > PT", "Gradient Descent", (("mp2-shallow", "spot"), ("mp2-deep", "spot"), ("spot", "pt"))),
    ("deep > shallow (gradient)", "Gradient Descent", (("mp2-deep", "mp2-shallow"),)),
    # the table's black-box blocks name black-box MP2's rows as the paper does: mp2-shallow, mp2-deep
    ("MP2 black-box > BBTv2 > BBT", "Black-Box Tuning",
     (("mp2-shallow", "bbtv2"), ("mp2-deep", "bbtv2"), ("bbtv2", "bbt"))),
    ("deep > shallow (black-box)", "Black-Box Tuning", (("mp2-deep", "mp2-shallow"),)),
)
ALPHA = 0.05


@dataclass
class Comparison:
    block: str
    better: str
    worse: str
    avg_better: float
    avg_worse: float
    tasks_ahead: int          # tasks where ``better``'s mean is above ``worse``'s
    tasks_significant: int    # of them, Welch's one-sided p < ALPHA
    tasks: int

    @property
    def holds(self) -> bool:
        return self.avg_better > self.avg_worse

    def text(self) -> str:
        sign = ">" if self.holds else "<="
        return (f"{self.better} {self.avg_better:.1f} {sign} {self.worse} {self.avg_worse:.1f} "
                f"(ahead on {self.tasks_ahead} of {self.tasks} tasks, {self.tasks_significant} at p < {ALPHA})")


@dataclass
class Verdict:
    claim: str
    comparisons: List[Comparison]

    @property
    def word(self) -> str:
        held = [c.holds for c in self.comparisons]
        if not held:
            return "not measured"
        return "yes" if all(held) else "partly" if any(held) else "no"


def welch_greater(m1: float, s1: float, n1: int, m2: float, s2: float, n2: int) -> float:
    """One-sided p of mean 1 > mean 2 from summary statistics (``welch_p``)."""
    return welch_p(m1, s1, n1, m2, s2, n2, alternative="greater")


def welch_p(m1: float, s1: float, n1: int, m2: float, s2: float, n2: int, alternative: str = "two-sided") -> float:
    """p of Welch's t-test (unequal variances) from each side's mean, sample std and n (scipy);
    ``alternative`` as scipy's. NaN where a side has fewer than 2 runs. Both stds 0 (two
    constant predictions): 0 if the means differ in the tested direction, else 1."""
    from scipy.stats import ttest_ind_from_stats

    if n1 < 2 or n2 < 2:
        return float("nan")
    if s1 == 0 and s2 == 0:
        differ = {"greater": m1 > m2, "less": m1 < m2, "two-sided": m1 != m2}[alternative]
        return 0.0 if differ else 1.0
    return float(ttest_ind_from_stats(m1, s1, n1, m2, s2, n2, equal_var=False, alternative=alternative).pvalue)


def check(frame, claims=CLAIMS) -> List[Verdict]:
    """Each claim's verdict on a table's CSV rows (``tables.CSV_COLUMNS``) as a DataFrame."""
    cells = frame[frame["task"] != "avg"]
    avgs = frame[frame["task"] == "avg"]
    verdicts = []
    for claim, paradigm, pairs in claims:
        comparisons = []
        for block in sorted(b for b in frame["block"].unique() if b.endswith(paradigm)):
            for better, worse in pairs:
                c = _compare(cells[cells["block"] == block], avgs[avgs["block"] == block], block, better, worse)
                if c is not None:
                    comparisons.append(c)
        verdicts.append(Verdict(claim, comparisons))
    return verdicts


def _compare(cells, avgs, block: str, better: str, worse: str) -> Optional[Comparison]:
    a, b = avgs[avgs["method"] == better], avgs[avgs["method"] == worse]
    if a.empty or b.empty or a["mean"].isna().any() or b["mean"].isna().any():
        return None  # a row this table lacks (or one without every cell)
    joined = cells[cells["method"] == better].merge(cells[cells["method"] == worse], on="task",
                                                    suffixes=("_a", "_b")).dropna(subset=["mean_a", "mean_b"])
    ahead = joined[joined["mean_a"] > joined["mean_b"]]
    significant = sum(welch_greater(r.mean_a, r.std_a, int(r.n_a), r.mean_b, r.std_b, int(r.n_b)) < ALPHA
                      for r in ahead.itertuples())
    return Comparison(block, better, worse, float(a["mean"].iloc[0]), float(b["mean"].iloc[0]),
                      len(ahead), int(significant), len(joined))


def seen_task_check(frame, pretrained: Sequence[str] = ("spot", "mp2-shallow", "mp2-deep"),
                    baseline: str = "pt") -> List[str]:
    """Issue 24's test of transfer: each pre-trained method against PT on each UNSEEN DATA
    task (tasks its pre-training trained on), one line each."""
    cells = frame[(frame["task"] != "avg") & frame["block"].str.startswith("UNSEEN DATA")
                  & frame["block"].str.endswith("Gradient Descent")]
    base = cells[cells["method"] == baseline].set_index("task")
    lines = []
    for method in pretrained:
        for r in cells[cells["method"] == method].itertuples():
            if r.task not in base.index or r.mean != r.mean:
                continue
            b = base.loc[r.task]
            p = welch_greater(r.mean, r.std, int(r.n), b["mean"], b["std"], int(b["n"]))
            lines.append(f"{method} on {r.task}: {r.mean:.1f} ± {r.std:.1f} vs PT {b['mean']:.1f} ± {b['std']:.1f}: "
                         f"{'above' if r.mean > b['mean'] else 'not above'} (Welch one-sided p = {p:.2f})")
    return lines


def pretraining_dev(summaries: Sequence[dict]) -> List[str]:
    """What each pre-training learned, from its ``pretrain.json``: per upstream task, the dev
    score at the selected step against the best constant prediction on the same slice."""
    from .metrics import above_constant

    lines = []
    for s in summaries:
        best = next(c for c in s["dev_curve"] if c["step"] == s["best_step"])
        learned = []
        for t in s["tasks"]:
            constant = t.get("dev_constant")
            mark = "" if constant is None else f" (constant {constant:.1f}: {best['tasks'][t['name']] - constant:+.1f})"
            learned.append(f"{t['name']} {best['tasks'][t['name']]:.1f}{mark}")
        above, scored = above_constant(best["tasks"], {t["name"]: t.get("dev_constant") for t in s["tasks"]})
        lines.append(f"{s['pretraining']}: best mean dev {s['best_dev']:.2f} at step {s['best_step']} of "
                     f"{s['settings']['config']['steps']}; above a constant prediction on {len(above)} of {scored} "
                     "tasks: " + "; ".join(learned))
    return lines


def report(csv_path: str, pretrain_paths: Sequence[str] = ()) -> str:
    import pandas as pd

    from .errors import DataError
    from .tables import CSV_COLUMNS

    try:
        frame = pd.read_csv(csv_path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(f"{csv_path} is not a table CSV: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    missing = [c for c in CSV_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{csv_path} is not a regenerated table's CSV: no column {', '.join(missing)}")
    out = [f"The papers' orderings on {csv_path} (per block: the block's average; per task: Welch's one-sided "
           f"t-test from mean, std and seeds):"]
    for v in check(frame):
        out.append(f"- {v.claim}: {v.word}")
        out += [f"    {c.block}: {c.text()}" for c in v.comparisons]
    out.append("- pre-trained methods vs PT on the UNSEEN DATA tasks their pre-training saw:")
    out += [f"    {line}" for line in seen_task_check(frame)]
    if pretrain_paths:
        out.append("- what each pre-training learned (dev at its selected step, against a constant prediction):")
        out += [f"    {line}" for line in pretraining_dev([_read_summary(p) for p in pretrain_paths])]
    return "\n".join(out)


def _read_summary(path: str) -> dict:
    import json

    from .errors import DataError

    try:
        with open(path, encoding="utf-8") as f:
            summary = json.load(f)
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read pre-training summary {path}: {e}") from None
    if not isinstance(summary, dict) or not {"dev_curve", "tasks", "best_step"} <= summary.keys():
        raise DataError(f"{path} is not a pre-training's pretrain.json")
    if any("dev_constant" not in t for t in summary["tasks"]):
        raise DataError(f"{path} was written before pre-trainings recorded each task's constant prediction: "
                        f"rerun it")
    return summary
