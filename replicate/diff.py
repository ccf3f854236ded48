"""Regenerated table vs published numbers, cell by cell.

Cells match on (paper, table, block, method, backbone, task, shot). Each row gets Δ = regenerated
− published and a verdict:

- ``within 1 std``: |Δ| <= the published std (the paper's own seed spread);
- ``within 2 std``; ``outside 2 std``;
- ``no published std``: the paper prints a mean only (Δ still shown);
- ``no published number``: a regenerated cell the paper does not have (e.g. embedded tasks);
- ``no regenerated number``: a published cell not regenerated; quoted rows (the paper took
  them from another paper) say ``published only (quoted from <source>)``.

Beside the verdict, ``welch_p``: the two-sided p of Welch's t-test of the two means, from each
side's mean, sample std and number of runs (scipy, ``orderings.welch_p``). The published
side's runs (``published_n``) are the seeds the paper states for its table (``PaperSetup.seeds``;
for a cell it quotes from another paper of the registry, that paper's); where a side's std or
runs are unknown (a cell quoted from elsewhere, a paper printing no std, one regenerated
seed), the column says which instead of a number.

A ``setup`` column says whether the regenerated cell was produced in the paper's setup (its
data, backbone, shot, number of seeds, and epochs where the paper states them) or how it
differs; the header repeats it. An embedded cell is never presented as a reproduction of a
paper's number: it has no matching published cell, because its task is not the paper's.
"""

from __future__ import annotations

from typing import Dict, List, Optional

from . import published
from .io import write_text_atomic
from .tables import MAJORITY

KEY_FIELDS = ("paper", "table", "block", "method", "backbone", "task", "shot")
DIFF_COLUMNS = ["paper", "table", "block", "method", "backbone", "task", "shot", "metric", "regenerated_mean",
                "regenerated_std", "n", "published_mean", "published_std", "published_n", "delta", "verdict", "welch_p",
                "setup", "source"]


def _num(text: str) -> Optional[float]:
    return float(text) if text not in ("", None) else None


def published_runs(paper: str, source: str) -> Optional[int]:
    """The runs a published cell's mean and std are over: the seeds its paper states, or those of
    the paper of the registry it quotes; None for a cell quoted from a paper outside it."""
    from .params import PAPER_SETUPS

    if source:
        paper = published.SOURCE_PAPERS.get(source)
    return PAPER_SETUPS[paper].seeds if paper else None


def welch_text(reg: Optional[float], reg_std: Optional[float], reg_n: Optional[int], pub: Optional[float],
               pub_std: Optional[float], pub_n: Optional[int]) -> str:
    """The two-sided Welch p of the regenerated vs the published mean (3 significant digits), or
    what it lacks; empty where a side has no mean (the verdict says which)."""
    from .orderings import welch_p

    if reg is None or pub is None:
        return ""
    lacking = [what for what, missing in (("published std", pub_std is None), ("published seeds", pub_n is None),
                                          ("regenerated std", reg_std is None)) if missing]
    if lacking:
        return "no " + ", no ".join(lacking)
    if reg_n is None or reg_n < 2 or pub_n < 2:
        return "fewer than 2 runs"
    return f"{welch_p(reg, reg_std, reg_n, pub, pub_std, pub_n):.3g}"


def verdict(reg: Optional[float], pub: Optional[float], pub_std: Optional[float], source: str = "") -> str:
    if pub is None:
        return "no published number"
    if reg is None:
        return f"published only (quoted from {source})" if source else "no regenerated number"
    if pub_std is None or pub_std == 0:
        return "no published std"
    delta = abs(reg - pub)
    if delta <= pub_std:
        return "within 1 std"
    return "within 2 std" if delta <= 2 * pub_std else "outside 2 std"


# How the harness reads a method's answer where the paper reads it otherwise: every method
# here answers through MP2's MRC span head (replicate/formats.py).
LETTERS_NOTE = "answer read by an MRC span head over the option letters"
FORMAT_NOTES = {
    # MP2 Table 3: MP2 re-implements Unified PPT on CPT-large without saying how it reads the letter
    ("mp2", "ppt-unified"): LETTERS_NOTE + " (MP2 A.1 does not say how its PPT reads it)",
    ("ppt", "ppt-unified"): LETTERS_NOTE + " (paper: T5/CPM-2 generate the letter)",
    ("ppt", "pt-mc"): LETTERS_NOTE + " (paper: T5/CPM-2 generate the letter)",
}
VERBALIZER_NOTE = "answer read by an MRC span head over the label words (paper: text-to-text with a verbalizer)"


def setup_note(row: Dict[str, str], paper_backbones: set, paper_shots: set) -> str:
    """'paper setup' or what differs from it (data, backbone, shot, seeds, epochs where the
    paper states them, and how the answer is read where the paper reads it otherwise)."""
    from .params import PAPER_SETUPS

    setup = PAPER_SETUPS[row["paper"]]
    diffs = []
    note = FORMAT_NOTES.get((row["paper"], row["method"]))
    if note or not setup.mrc_head:
        diffs.append(note or VERBALIZER_NOTE)
    if row.get("setup") != "paper":
        diffs.append(f"{row.get('setup') or 'unknown'} data")
    if row["backbone"] not in paper_backbones:
        diffs.append(f"backbone {row['backbone']} (paper: {setup.backbone})")
    if row.get("shot") and row["shot"] not in paper_shots:
        diffs.append(f"shot {row['shot']} (paper: {published.shots_text(paper_shots) or 'not stated'})")
    n = row.get("n")
    if n and int(n) != setup.seeds:
        diffs.append(f"{n} seeds (paper: {setup.seeds})")
    paper_epochs = setup.epochs.get(row["method"])
    if row.get("epochs") and paper_epochs and int(row["epochs"]) != paper_epochs:
        diffs.append(f"{row['epochs']} epochs (paper: {paper_epochs})")
    return "paper setup" if not diffs else "differs: " + "; ".join(diffs)


def diff_rows(regenerated: List[Dict[str, str]], tables: Optional[set] = None) -> List[Dict[str, str]]:
    """Every regenerated cell and every published cell of the tables (by default, the tables the
    regenerated rows name), each once: the regenerated rows in their order, each joined with its
    published cell by ``KEY_FIELDS`` (pandas), then the published cells no regenerated row has."""
    import pandas as pd

    tables = tables or {(r["paper"], r["table"]) for r in regenerated}
    pub = pd.DataFrame([r for paper, table in sorted(tables) for r in published.rows(paper, table)],
                       columns=published.COLUMNS)
    backbones = {paper: set(pub.loc[pub["paper"] == paper, "backbone"]) for paper, _ in tables}
    shots = {(paper, table): set(pub.loc[(pub["paper"] == paper) & (pub["table"] == table), "shot"])
             for paper, table in tables}
    # a reference row of the regenerated table (majority class) is not a method of the paper
    reg = pd.DataFrame(regenerated, columns=[*KEY_FIELDS, "metric", "mean", "std", "n", "setup", "epochs"],
                       dtype=object)
    reg = reg[reg["method"] != MAJORITY].fillna("")
    # many_to_one: a published table with two cells of one key is a registry error, never a doubled row
    joined = reg.merge(pub[[*KEY_FIELDS, "mean", "std", "source"]].rename(
        columns={"mean": "published_mean", "std": "published_std"}), on=list(KEY_FIELDS), how="left",
        validate="many_to_one").fillna("")
    out = []
    for r in joined.to_dict("records"):
        mean, pm, ps = _num(r["mean"]), _num(r["published_mean"]), _num(r["published_std"])
        pub_n = published_runs(r["paper"], r["source"]) if pm is not None else None
        out.append({
            **{f: r[f] for f in KEY_FIELDS},
            "metric": r["metric"], "regenerated_mean": r["mean"], "regenerated_std": r["std"], "n": r["n"],
            "published_mean": r["published_mean"], "published_std": r["published_std"],
            "published_n": "" if pub_n is None else str(pub_n),
            "delta": "" if mean is None or pm is None else f"{mean - pm:+.2f}",
            "verdict": verdict(mean, pm, ps, r["source"]),
            "welch_p": welch_text(mean, _num(r["std"]), int(r["n"]) if r["n"] else None, pm, ps, pub_n),
            "setup": setup_note(r, backbones[r["paper"]], shots[(r["paper"], r["table"])]),
            "source": r["source"],
        })
    regenerated_keys = pd.MultiIndex.from_frame(reg[list(KEY_FIELDS)])
    only_published = pub[~pd.MultiIndex.from_frame(pub[list(KEY_FIELDS)]).isin(regenerated_keys)]
    for p in only_published.to_dict("records"):
        pub_n = published_runs(p["paper"], p["source"]) if p["mean"] else None
        out.append({
            **{f: p[f] for f in KEY_FIELDS},
            "metric": p["metric"], "regenerated_mean": "", "regenerated_std": "", "n": "",
            "published_mean": p["mean"], "published_std": p["std"], "published_n": "" if pub_n is None else str(pub_n),
            "delta": "",
            "verdict": verdict(None, _num(p["mean"]), _num(p["std"]), p["source"]) if p["mean"] else "not reported",
            "welch_p": "", "setup": "", "source": p["source"],
        })
    return out


def header_lines(regenerated: List[Dict[str, str]], tables: set) -> List[str]:
    from .params import PAPER_SETUPS

    papers = sorted(tables)
    if not regenerated:
        return [f"regenerated: nothing (this run regenerates no row of {paper} Table {table})"
                for paper, table in papers]
    setups = sorted({r.get("setup", "") for r in regenerated})
    runs = sorted({r.get("run", "") for r in regenerated})
    backbones = sorted({r["backbone"] for r in regenerated})
    lines = [f"regenerated: run {', '.join(runs)}, setup {', '.join(setups)}, backbone {', '.join(backbones)}"]
    for paper, table in papers:
        lines.append(f"published: {paper} Table {table}; paper setup: {PAPER_SETUPS[paper].where}, "
                     f"{PAPER_SETUPS[paper].seeds} seeds")
    if setups != ["paper"]:
        lines.append("NOT a reproduction: the regenerated cells were produced in another setup (see the setup "
                     "column); only cells with the same task, method, backbone and shot are compared")
    return lines


def to_csv(rows: List[Dict[str, str]]) -> str:
    import pandas as pd

    return pd.DataFrame(rows, columns=DIFF_COLUMNS).to_csv(index=False, lineterminator="\n")


def to_markdown(rows: List[Dict[str, str]], header: List[str]) -> str:
    """The diff as Markdown: the header, the count of each verdict, and the rows. The grid is laid
    out here, not by ``DataFrame.to_markdown`` (tabulate), which pads every cell to its column's
    widest: the setup column's notes would widen each of hundreds of rows to ~200 characters."""
    import pandas as pd

    counts = pd.Series([r["verdict"] for r in rows], dtype=object).value_counts().sort_index()
    lines = ["# Regenerated vs published", ""] + [f"- {h}" for h in header]
    lines += ["- verdicts: " + ", ".join(f"{v}: {n}" for v, n in counts.items()), ""]
    cols = ["block", "method", "backbone", "task", "shot", "metric", "regenerated_mean", "regenerated_std", "n",
            "published_mean", "published_std", "published_n", "delta", "verdict", "welch_p", "setup"]
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "|".join("---" for _ in cols) + "|")
    for r in rows:
        cells = []
        for c in cols:
            v = r[c]
            if c in ("regenerated_mean", "regenerated_std") and v:
                v = f"{float(v):.1f}"
            cells.append(v)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def read_table_csv(path: str, allow_empty: bool = False) -> List[Dict[str, str]]:
    """A table CSV's rows, every value as its text ("" where empty)."""
    import pandas as pd

    from .errors import ReplicateError

    try:
        # index_col=False: a row with more fields than the header never shifts its columns into an index
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8", index_col=False)
    except FileNotFoundError:
        raise ReplicateError(f"{path} does not exist") from None
    except UnicodeDecodeError:
        raise ReplicateError(f"{path}: not a table CSV (not UTF-8 text)") from None
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame()
    except (OSError, pd.errors.ParserError) as e:
        raise ReplicateError(f"{path}: cannot be read as a table CSV ({str(e).strip()})") from None

    missing = {"paper", "table", "block", "method", "backbone", "task", "shot", "metric", "mean"} - set(frame.columns)
    if missing:
        raise ReplicateError(f"{path}: not a table CSV (missing columns {', '.join(sorted(missing))})")
    if frame.empty and not allow_empty:
        raise ReplicateError(f"{path}: a table CSV with no rows: nothing says which published table to diff")
    return frame.fillna("").to_dict("records")


def write_diff(regenerated_csv: str, prefix: Optional[str] = None, paper: Optional[str] = None,
               table: Optional[str] = None) -> List[str]:
    """Diff a table CSV; ``paper`` and ``table`` name the published table when the CSV has no
    rows to say it (a table of which the run regenerates nothing)."""
    rows = read_table_csv(regenerated_csv, allow_empty=paper is not None)
    tables = {(paper, table)} if paper is not None else {(r["paper"], r["table"]) for r in rows}
    prefix = prefix or regenerated_csv.removesuffix(".csv") + ".diff"
    out = diff_rows(rows, tables)
    write_text_atomic(prefix + ".csv", to_csv(out))
    write_text_atomic(prefix + ".md", to_markdown(out, header_lines(rows, tables)))
    return [prefix + ".csv", prefix + ".md"]
