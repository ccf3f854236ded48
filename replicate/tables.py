"""Aggregate per-cell results into paper-shaped tables (Markdown, CSV, LaTeX).

Any results table of the four papers can be regenerated from one run: its layout (blocks,
rows, task columns, metrics, averages) comes from the published registry's shape file, and
its cells from the run's result files. A paper row is regenerated when the run trains its
method; it then reads the run's backbone. Paper rows of methods the run does not train are
left to the diff, which lists their published numbers.

Tasks the run trains that are not columns of the paper's table (the embedded stand-ins) are
shown as the run's own columns, never under a paper column: in MP2's tables, in the block of
their registered track (UNSEEN DATA / UNSEEN TASK); elsewhere, in a trailing block of their
own. So an embedded number is never laid out as if it were the paper's task.

Each cell is mean ± std over the seeds that finished (sample std, ddof=1), with n shown
whenever fewer seeds than configured finished; cells with no finished seed say "missing" or
"failed". Nothing is dropped: every configured (method, task, shot) of the table appears.
The CSV is tidy and uses the published registry's columns, so ``replicate diff`` compares it
with the papers' numbers cell by cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from . import published
from .config import cells, groups, method_overrides, split_path
from .errors import ConfigError
from .io import git_state, read_json, write_text_atomic
from .results import CellReader
from .params import PAPER_SETUPS

CSV_COLUMNS = ["paper", "table", "block", "method", "backbone", "task", "shot", "metric", "mean", "std", "params",
               "source", "note", "n", "n_expected", "status", "setup", "run", "config_hash", "epochs"]
TRACK_TITLES = {"unseen-data": "UNSEEN DATA", "unseen-task": "UNSEEN TASK"}
OWN_TASKS_BLOCK = "THIS RUN'S TASKS (not columns of the paper's table)"
MAJORITY = "majority-class"
NOT_ABOVE_MAJORITY = "†"
NOT_SCORES = {"minutes"}  # column measures that are not a task's score (MP2 Table 4)
# A cell that does not exist: the method declines the task (BBT on an extractive task), or a
# reference that does not apply; printed as the papers print theirs (MP2 Table 3: "–").
NO_CELL = "–"


def _series(values):
    import pandas as pd  # here, not at the top: importing the tables (the Snakefile does) needs no pandas

    return pd.Series(values, dtype=float)


@dataclass
class CellSummary:
    """Aggregate of one (method, shot, task) over its seeds."""

    scores: List[float] = field(default_factory=list)
    n_expected: int = 0
    failed: int = 0
    config_hashes: set = field(default_factory=set)
    runtimes: set = field(default_factory=set)  # (threads, device) the cell's seeds ran with
    digits: int = 1  # decimals printed (minutes: 2, as MP2 Table 4 prints them)

    @property
    def mean(self) -> Optional[float]:
        return float(_series(self.scores).mean()) if self.scores else None

    @property
    def std(self) -> Optional[float]:
        """Sample std (ddof=1, pandas' default); None for fewer than 2 seeds."""
        return float(_series(self.scores).std()) if len(self.scores) > 1 else None

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
            return NO_CELL
        if not self.scores:
            return f"failed ({self.failed}/{self.n_expected})" if self.failed else "missing"
        d = self.digits
        s = f"{self.mean:.{d}f}" if self.std is None else f"{self.mean:.{d}f} ± {self.std:.{d}f}"
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


Row = Tuple[str, int]  # (method, shot); the majority-class reference row has shot 0


@dataclass
class Block:
    title: str
    tasks: List[str]                 # columns: the paper's (in its order) the run trained, then stand-ins
    metrics: List[str]
    rows: List[Row]
    averaged: Optional[List[str]]    # the tasks the Avg column covers; None: the block has no Avg
    stand_ins: List[str]             # tasks of this run that are not columns of the paper's table
    printed: Dict[str, str] = field(default_factory=dict)  # task -> the column name it fills, where they differ

    def name(self, task: str) -> str:
        return self.printed.get(task, task)


@dataclass
class Table:
    paper: str
    table: str
    title: str
    header: List[str]    # lines describing the setup
    blocks: List[Block]
    labels: Dict[Row, Tuple[str, str]]   # row -> (label, tunable params as printed)
    epochs: Dict[tuple, int]             # (method, shot, task) -> training epochs of its cells in this run
    cells: Dict[tuple, CellSummary]      # (method, shot, task) -> summary; majority has shot 0
    backbone: str
    setup: str
    run: str

    def cell(self, row: Row, task: str) -> CellSummary:
        """The row's cell of ``task``; one with nothing expected where the row's method has
        no cells for the task (``Method.declines``)."""
        return self.cells.get((row[0], row[1], task)) or CellSummary(n_expected=0)

    def mark(self, row: Row, task: str) -> str:
        """A dagger on a cell whose mean is not above the majority-class reference."""
        cell, ref = self.cell(row, task), self.cells.get((MAJORITY, 0, task))
        if row[0] == MAJORITY or ref is None or cell.mean is None or ref.mean is None:
            return ""
        return NOT_ABOVE_MAJORITY if cell.mean <= ref.mean else ""

    def block_avg(self, block: Block, row: Row) -> Optional[float]:
        if not block.averaged:
            return None
        means = [self.cell(row, t).mean for t in block.averaged]
        return None if any(m is None for m in means) else float(_series(means).mean())


# Tables whose numbers are not one score per cell, and where the run writes what they print.
WHERE_NOT_SCORES = {
    ("compt", t): ("the masking evaluation's confusion counts, masking/<backbone>/shot<k>/<method>.confusion.csv "
                   "(`snakemake compt_masking`), at masks all_src, private and total")
    for t in ("5", "6", "a1")
}


def table_names() -> List[Tuple[str, str]]:
    """Every (paper, table) of the published registry, in the papers' order."""
    return [(paper, table) for paper in published.PAPERS for table in published.shape(paper)["tables"]]


def table_methods(paper: str, table: str) -> List[str]:
    """The methods of a paper table's rows, in printed order."""
    blocks = _shape(paper, table)["blocks"].values()
    return list(dict.fromkeys(row[0] for block in blocks for row in block["rows"]))


def regenerated_sources(cfg: dict, paper: str, table: str) -> List[str]:
    """The grid methods whose cells fill the paper table's regenerated rows."""
    sources = row_sources(cfg, paper, table)
    return list(dict.fromkeys(sources[k][0] for k in regenerated_methods(cfg, paper, table)))


def paradigm_of_block(title: str) -> str:
    """A "Black-Box Tuning" block (MP2 Tables 3-4) takes black-box methods' rows; any other block
    gradient ones (MP2 Table 3 has rows named mp2-shallow in both)."""
    return "black-box" if "Black-Box" in title else "gradient"


def row_key(row: str, paradigm: str) -> str:
    """A table row's identity: its printed method name, and the paradigm of its block."""
    return row if paradigm == "gradient" else f"{row}@{paradigm}"


def row_name(key: str) -> str:
    return key.split("@")[0]


def row_sources(cfg: dict, paper: Optional[str] = None, table: Optional[str] = None) -> Dict[str, Tuple[str, str]]:
    """Row key -> (the grid method whose cells fill it, the view it reads them with). Each
    grid method fills its own row, the rows it declares the same (``Method.rows``: MP2 Table 5's
    "w/o FSL" under Shallow MP2 is ``mp2-shallow`` itself) and the rows that read its cells
    another way (``Method.row_views``: "Router-only" is stage I of black-box MP2), each in the
    blocks of its paradigm. With ``paper`` and ``table``: only the methods that fill that table
    (``Method.tables``: ComPT's SET2 runs print under Table 1's row names in Tables 2, 4, 7)."""
    from .methods import METHODS

    out: Dict[str, Tuple[str, str]] = {}
    for name in cfg["grid"]["methods"]:
        method = METHODS.get(name)
        if paper is not None and method.tables and (paper, str(table)) not in method.tables:
            continue
        out[row_key(name, method.paradigm)] = (name, "score")
        for row in method.rows:
            out.setdefault(row_key(row, method.paradigm), (name, "score"))
        for row, view in method.row_views.items():
            out.setdefault(row_key(row, method.paradigm), (name, view))
    return out


def with_ablations(cfg: dict, keys: List[str], paper: str, table: str) -> List[str]:
    """``keys`` (row keys, in printed order), each followed by the rows of the grid's methods
    that are ablations of it (``Method.ablation_of``: no paper prints them) in this table
    (``Method.ablation_tables``), in grid order."""
    from .methods import METHODS

    def here(method) -> bool:
        return not method.ablation_tables or (paper, str(table)) in method.ablation_tables

    out = []
    for key in keys:
        out.append(key)
        paradigm = "gradient" if key == row_name(key) else key.split("@")[1]
        out += [row_key(m, paradigm) for m in cfg["grid"]["methods"]
                if METHODS.get(m).ablation_of == row_name(key) and METHODS.get(m).paradigm == paradigm
                and here(METHODS.get(m))]
    return list(dict.fromkeys(out))


def regenerated_methods(cfg: dict, paper: str, table: str) -> List[str]:
    """The row keys (``row_key``) of the paper table's rows that this run fills, each
    followed by the rows of its ablations in the grid."""
    if not any(r["shot"] for r in published.rows(paper, table)):
        return []  # not a table of few-shot results (MP2 Table 1: parameter and data sizes)
    sources = row_sources(cfg, paper, table)
    keys = [row_key(r[0], paradigm_of_block(title)) for title, b in _shape(paper, table)["blocks"].items()
            for r in b["rows"]]
    return [k for k in with_ablations(cfg, [k for k in dict.fromkeys(keys) if k in sources], paper, table)
            if k in sources]


def table_shots(cfg: dict, paper: str, table: str) -> list:
    """The grid's shots that the paper table prints (MPT Table 1: full data; its Table 3:
    4, 16, 32), or every grid shot where the table prints none of them (a run that stands
    in for the paper's setup, as the embedded default)."""
    printed = {r["shot"] for r in published.rows(paper, table) if r["shot"]}
    shots = [s for s in cfg["grid"]["shots"] if str(s) in printed]
    return shots or list(cfg["grid"]["shots"])


def column_of(task: str, columns) -> Optional[str]:
    """The paper column a task fills: its name, or the name the papers print for it
    (``TaskSpec.paper_name``: the English PAWS is ``paws-en`` here, "paws" in MPT's and
    ComPT's tables); None if it fills none of ``columns``."""
    from .tasks import TASKS

    if task in columns:
        return task
    printed = TASKS.get(task).paper_name
    return printed if printed in columns else None


def block_columns(block: dict) -> List[str]:
    """A shape block's columns: those it prints, the columns its averages cover that it does
    not print (MPT Table 6 prints the SuperGLUE average of Table 1's five tasks alone) just
    before the first average."""
    printed = block["columns"]
    unprinted = list(dict.fromkeys(c for cols in (block.get("averages") or {}).values() for c in (cols or [])
                                   if c not in printed))
    first_avg = next((i for i, c in enumerate(printed) if c in (block.get("averages") or {})), len(printed))
    return printed[:first_avg] + unprinted + printed[first_avg:]


def table_tasks(cfg: dict, paper: str, table: str) -> List[str]:
    """The grid's tasks a paper table shows: its own columns, and the run's tasks that stand
    in for them (``standing_in_for``)."""
    columns = {c for b in _shape(paper, table)["blocks"].values() for c in block_columns(b)}
    return [t for t in cfg["grid"]["tasks"] if column_of(t, columns)] + standing_in_for(cfg, columns, paper)


def standing_in_for(cfg: dict, columns, paper: Optional[str] = None) -> List[str]:
    """The grid's tasks that stand in for a table's ``columns``: those not among them, less
    the columns of the paper's other tables (MPT's MRQA tasks belong to its Table 2, not to
    Table 1 as stand-ins; MP2's Table 5 prints four of MP2's tasks, and its ablation is not
    trained on the other ten). MP2's tasks still stand in for PPT's columns."""
    others = set() if paper is None else {
        c for _, t in table_names() if _ == paper for b in _shape(paper, t)["blocks"].values() for c in block_columns(b)}
    return [t for t in cfg["grid"]["tasks"] if not column_of(t, columns) and not column_of(t, others)]


def table_groups(cfg: dict, paper: str, table: str) -> list:
    """The grid's (method, backbone, task, shot) groups whose cells a paper table reads."""
    methods = set(regenerated_sources(cfg, paper, table))
    tasks, shots = set(table_tasks(cfg, paper, table)), table_shots(cfg, paper, table)
    return [g for g in groups(cfg) if g.method in methods and g.task in tasks and g.shot in shots]


def _shape(paper: str, table: str) -> dict:
    if paper not in published.PAPERS:
        raise ConfigError(f"unknown paper {paper!r}; known: {', '.join(published.PAPERS)}")
    tables = published.shape(paper)["tables"]
    if table not in tables:
        raise ConfigError(f"{paper} has no results table {table!r}; known: {', '.join(tables)}")
    return tables[table]


def _summaries(cfg: dict, methods: List[str], metrics: Dict[str, Dict[str, str]], paper: str,
               table: str) -> Dict[tuple, CellSummary]:
    """Per (row key, shot, task): the summary of the cells of the grid method behind it, read
    with the row's view; ``metrics[key][task]``: the column's metric where it is not the task's
    own (MP2 Table 4: minutes)."""
    sources = row_sources(cfg, paper, table)
    rows_of: Dict[str, List[Tuple[str, str]]] = {}
    for key in methods:
        source, view = sources[key]
        rows_of.setdefault(source, []).append((key, view))
    out: Dict[tuple, CellSummary] = {}
    reader = CellReader(cfg)
    for cell in cells(cfg):
        for key, view in rows_of.get(cell.method, []):
            metric = metrics.get(key, {}).get(cell.task)
            summary = out.setdefault((key, cell.shot, cell.task), CellSummary(digits=2 if metric in NOT_SCORES else 1))
            _add_cell(summary, reader, cell, view, metric)
    return out


def cell_value(result: dict, view: str, metric: Optional[str]) -> Optional[float]:
    """What a row reads from a finished cell: its test score ("score") or stage I's alone
    ("stage1"), in ``metric`` where the column prints another metric than the task's own
    (None: the task's); with the metric "minutes", the wall time of those stages, per seed
    (a seed-batched group's time divided by its seeds, which share every forward pass)."""
    stages = result.get("stages") or []
    if metric == "minutes":
        upto = stages[:1] if view == "stage1" else stages
        if not upto or any("wall_s" not in st for st in upto):
            return None
        return sum(st["wall_s"] / st.get("group_seeds", 1) for st in upto) / 60
    if view == "stage1":
        if len(stages) < 2:
            return None  # one stage: no "stage I alone" was tested
        return stages[0].get("test_metrics", {}).get(metric or result["metric"])
    if metric is not None and metric != result.get("metric"):  # the column's metric (ComPT's CoLA: accuracy)
        return result.get("metrics", {}).get(metric)
    return result.get("score")


def _add_cell(summary: CellSummary, reader, cell, view: str = "score", metric: Optional[str] = None) -> None:
    """Count one cell into its row's summary: its value (``cell_value``), or a failure. The
    reader (``results.CellReader``) refuses a cell that is not current for the config."""
    summary.n_expected += 1
    result = reader.read(cell)
    if result is None:
        return
    value = cell_value(result, view, metric) if result.get("status") == "ok" else None
    if value is not None:
        summary.scores.append(float(value))
        summary.config_hashes.add(result["provenance"]["config_hash"])
        summary.runtimes.add((result["provenance"].get("threads"), result["provenance"].get("device")))
    else:
        summary.failed += 1


def _majority(cfg: dict, task: str, shot) -> CellSummary:
    """Accuracy of the best constant prediction on the task's test set (from a split manifest's
    test label counts; the test set is the same for every seed and shot)."""
    from .tasks import TASKS

    grid = cfg["grid"]
    if TASKS.get(task).kind != "classification":
        return CellSummary(n_expected=0)  # no label set: not applicable
    summary = CellSummary(n_expected=1)
    path = Path(split_path(cfg, task, shot, grid["seeds"][0]))
    if path.exists():
        counts = read_json(path)["label_counts"]["test"]
        summary.scores.append(100 * max(counts.values()) / sum(counts.values()))
    return summary


def _measure(blocks) -> Optional[str]:
    """The one column measure of ``blocks`` (shape blocks) when it is not a task's score
    (MP2 Table 4: minutes); None when the columns hold the tasks' own scores."""
    measures = {m for b in blocks for m in b.get("metrics", {}).values()}
    return measures.pop() if len(measures) == 1 and measures <= NOT_SCORES else None


def _track_stand_ins(title: str, stand_ins: List[str]) -> List[str]:
    """The stand-ins a block of MP2's track layout takes: those of the track its title starts
    with ("UNSEEN DATA / ..."). Blocks of other layouts take none."""
    from .tasks import TASKS

    return [t for t in stand_ins if TASKS.get(t).track in TRACK_TITLES
            and title.startswith(TRACK_TITLES[TASKS.get(t).track] + " /")]


def build_table(cfg: dict, paper: str, table: str) -> Table:
    """A paper table's layout over this run's methods, tasks and shots, from the result files."""
    from .backbones import BACKBONES
    from .methods import METHODS
    from .tasks import TASKS

    shape = _shape(paper, table)
    grid = cfg["grid"]
    spec = BACKBONES.get(grid["backbone"])
    methods = regenerated_methods(cfg, paper, table)
    shots = table_shots(cfg, paper, table)
    paper_columns = {c for b in shape["blocks"].values() for c in block_columns(b)}
    standing_in = standing_in_for(cfg, paper_columns, paper)
    placed: set = set()
    column_metrics: Dict[str, Dict[str, str]] = {}

    blocks: List[Block] = []
    for title, spec_block in shape["blocks"].items():
        block_methods = with_ablations(cfg, [k for k in dict.fromkeys(row_key(r[0], paradigm_of_block(title))
                                                                      for r in spec_block["rows"]) if k in methods],
                                       paper, table)
        if not block_methods:
            continue
        averages = spec_block.get("averages") or {}
        columns = block_columns(spec_block)
        task_of = {column_of(t, columns): t for t in grid["tasks"] if column_of(t, columns)}
        own_columns = [c for c in columns if c not in averages and c in task_of]
        own = [task_of[c] for c in own_columns]
        extra = _track_stand_ins(title, standing_in)
        placed.update(extra)
        tasks = own + extra
        if not tasks:
            continue
        # The Avg column: the paper's, when every column it averages was trained; over the
        # stand-ins, when the block shows only stand-ins.
        covered = next((cols for cols in averages.values() if cols and set(cols) <= set(own_columns)), None)
        averaged = [task_of[c] for c in covered] if covered else (extra if averages and not own else None)
        rows = [(m, s) for m in block_methods for s in shots]
        # a block of another measure than the tasks' scores (MP2 Table 4: minutes) measures
        # the run's own columns in it too
        measure = _measure([spec_block])
        # the paper's metric of each of its columns (ComPT's CoLA: accuracy, MPT's: MCC), the
        # task's own for a stand-in
        printed_metric = spec_block.get("metrics", {})
        block_metrics = [measure or printed_metric.get(c) or TASKS.get(t).metric
                         for c, t in zip(own_columns + extra, tasks)]
        for key in block_methods:
            column_metrics.setdefault(key, {}).update(
                {t: m for t, m in zip(tasks, block_metrics) if measure or m != TASKS.get(t).metric})
        blocks.append(Block(title, tasks, block_metrics, rows, averaged, extra,
                            {t: c for c, t in zip(own_columns, own) if c != t}))
    leftover = [t for t in standing_in if t not in placed]
    if leftover and methods:
        # the table's one measure where it is not a score (MP2 Table 4: minutes) measures them too
        measure = _measure(shape["blocks"].values())
        if measure:
            for key in methods:
                column_metrics.setdefault(key, {}).update({t: measure for t in leftover})
        blocks.append(Block(OWN_TASKS_BLOCK, leftover, [measure or TASKS.get(t).metric for t in leftover],
                            [(m, s) for m in methods for s in shots], None if measure else leftover, leftover))

    summaries = _summaries(cfg, methods, column_metrics, paper, table)
    scored = [b for b in blocks if not set(b.metrics) & NOT_SCORES]  # the reference is a score
    majority_tasks = list(dict.fromkeys(t for b in scored for t in b.tasks))
    summaries.update({(MAJORITY, 0, t): _majority(cfg, t, shots[0]) for t in majority_tasks})
    for block in scored:
        block.rows.append((MAJORITY, 0))

    multi_shot = len(shots) > 1 or any(len(r) > 2 for b in shape["blocks"].values() for r in b["rows"])
    labels: Dict[Row, Tuple[str, str]] = {(MAJORITY, 0): ("Majority class (reference)", "0")}
    epochs: Dict[tuple, int] = {}
    sources = row_sources(cfg, paper, table)
    row_tasks = list(dict.fromkeys(t for b in blocks for t in b.tasks))
    for name in methods:
        source, view = sources[name]
        method = METHODS.get(source)
        method_cfg = method.make_config(method_overrides(cfg, source))
        for shot in shots:  # a method's epochs may differ by task and shot (by_task, by_shot)
            for task in row_tasks:
                cell_cfg = method.make_config(method_overrides(cfg, source, task, shot))
                if hasattr(cell_cfg, "epochs"):  # black-box methods count forward calls instead
                    epochs[(name, shot, task)] = cell_cfg.epochs
        counts = method.trainable_parameters(spec, method_cfg)
        main = counts.get("backbone", 0) + counts.get("prompt", 0)
        if view != "score" or method.paradigm == "black-box":  # what the row itself tunes (Router-only: 8)
            main = method.view_parameters(view, spec, method_cfg)
            main_text = format_count(main)
        elif hasattr(method, "stage_counts"):  # tuned in stages: the range the paper prints (MP2: 50K~400K)
            stage = method.stage_counts(spec, method_cfg)
            main_text = f"{format_count(stage['stage2_one_prompt_per_layer'])}∼{format_count(stage['stage2_all_prompts'])}"
        else:
            main_text = format_count(main)
        head = counts.get("head", 0)  # no head in the text-to-text formulation
        params = format_count(head)
        if main:
            params = f"{main_text} (+{format_count(head)} head)" if head else main_text
        for shot in shots:
            label = method.paper_label or name
            if view == "stage1":
                label = f"{label}: stage I alone"
            labels[(name, shot)] = (f"{label} (k={shot})" if multi_shot else label, params)

    git = git_state()
    name = PAPER_SETUPS[paper].name
    header = [
        f"{name} Table {table}: {shape['caption']}",
        f"run `{cfg['run']}` (setup: {cfg.get('setup', 'embedded')}), backbone `{spec.name}`, "
        f"shots {shots}, seeds {grid['seeds']}, test cap {cfg['protocol'].get('test_cap')}",
        f"cells: mean ± sample std over seeds (n shown when fewer finished); git {git['commit'][:12]}"
        + (" (modified)" if git["dirty"] else ""),
    ]
    runtimes = sorted({rt for c in summaries.values() for rt in c.runtimes}, key=str)
    if runtimes:
        # results are bit-reproducible only for the same thread count and device (docs/design.md, "Determinism")
        header.append("ran with " + ", ".join(f"{t} thread{'s' if t != 1 else ''} on {d}" for t, d in runtimes))
    published_shots = published.shots_text(r["shot"] for r in published.rows(paper, table))
    if published_shots:
        header.append(f"the paper's cells are at shot {published_shots}")
    if blocks:
        header.append("majority class: accuracy of the best constant prediction on the same test set")
        if standing_in:
            header.append(f"this run's tasks {', '.join(standing_in)} are not columns of the paper's table: they "
                          "are shown as the run's own columns, never under a paper column")
    else:
        header.append("this run regenerates no row of this table (its published numbers are in the diff)")
    trained_names = {row_name(k) for k in sources}
    skipped = [f"{m} under {title}" for title, b in shape["blocks"].items() for m in dict.fromkeys(r[0] for r in b["rows"])
               if m in trained_names and row_key(m, paradigm_of_block(title)) not in methods]
    if skipped:
        header.append("rows of another paradigm than this run's method of that name, not regenerated: "
                      + "; ".join(skipped))
    cloze = []  # rows of methods that read label words at a [MASK] (BBT, BBTv2), not MP2's span head
    for key in methods:
        source = METHODS.get(sources[key][0])
        if getattr(source.make_config(method_overrides(cfg, source.name)), "formulation", "") == "mlm":
            cloze.append(source.paper_label or source.name)
    if cloze:
        head = ("CPT's own masked-LM head, as Black-Box-Tuning runs it" if spec.arch == "cpt" else
                f"a stand-in for a masked-LM head, which {spec.name} does not ship: CPT's form of one")
        header.append(f"{' and '.join(dict.fromkeys(cloze))}: Black-Box-Tuning's label words at a [MASK], scored "
                      f"with {spec.name}'s tied input embeddings ({head}); no pre-training; no cells (–) for "
                      "extractive tasks")
    not_trained = [m for m in table_methods(paper, table) if m not in {row_name(k) for k in methods}]
    not_built = [m for m in not_trained if m not in METHODS]
    not_in_grid = [m for m in not_trained if m in METHODS]
    reasons = [f"{', '.join(ms)} ({why})" for ms, why in ((not_built, "not built yet"),
                                                           (not_in_grid, "not in this run's grid")) if ms]
    if not any(r["shot"] for r in published.rows(paper, table)):
        reasons = [f"{', '.join(not_trained)} (not per-cell scores: {WHERE_NOT_SCORES.get((paper, table), 'none')})"]
    if reasons:
        header.append("paper rows not regenerated: " + "; ".join(reasons))
    return Table(paper, table, f"{name} Table {table} (regenerated)", header,
                 blocks, labels, epochs, summaries, spec.name, cfg.get("setup", "embedded"), cfg["run"])


def to_csv(table: Table) -> str:
    """The table as tidy CSV (``CSV_COLUMNS``), written by pandas: means and stds with 4 decimals,
    empty where there is none."""
    import pandas as pd

    records = []
    for block in table.blocks:
        for row in block.rows:
            method, shot = row
            params = table.labels[row][1]
            shot_text = "" if method == MAJORITY else shot
            of_task = {t: table.epochs.get((method, shot, t), "") for t in block.tasks}
            note = "stand-in: this run's task, not a column of the paper's table"
            for task, metric in zip(block.tasks, block.metrics):
                c = table.cell(row, task)
                records.append([table.paper, table.table, block.title, row_name(method), table.backbone,
                                block.name(task), shot_text, metric, c.mean, c.std, params, "",
                                note if task in block.stand_ins else "",
                                len(c.scores), c.n_expected, c.status, table.setup, table.run,
                                ";".join(sorted(c.config_hashes)), of_task[task]])
            # the average's epochs: the one value of its tasks, or none
            epochs = of_task[block.tasks[0]] if len(set(of_task.values())) == 1 else ""
            avg = table.block_avg(block, row)
            if block.averaged and (method != MAJORITY or avg is not None):
                records.append([table.paper, table.table, block.title, row_name(method), table.backbone, "avg",
                                shot_text, "avg", avg, None, params, "",
                                "mean of " + ", ".join(map(block.name, block.averaged)), "", "",
                                "ok" if avg is not None else "incomplete", table.setup, table.run, "", epochs])
    return pd.DataFrame(records, columns=CSV_COLUMNS).to_csv(index=False, lineterminator="\n", float_format="%.4f")


def _any_mark(table: Table) -> bool:
    return any(table.mark(row, t) for b in table.blocks for row in b.rows for t in b.tasks)


def to_markdown(table: Table) -> str:
    lines = [f"# {table.title}", ""] + [f"- {h}" for h in table.header] + [""]
    for block in table.blocks:
        lines += [f"## {block.title or 'All tasks'}", ""]
        if block.stand_ins:
            lines += [f"Columns {', '.join(block.stand_ins)} are this run's tasks, not the paper's.", ""]
        head = ["Method", "Tunable Params"] + [f"{block.name(t)} ({m})" for t, m in zip(block.tasks, block.metrics)]
        head += ["Avg"] if block.averaged else []
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|")
        for row in block.rows:
            cells = [table.cell(row, t).text() + table.mark(row, t) for t in block.tasks]
            if block.averaged:
                avg = table.block_avg(block, row)
                cells.append("—" if avg is None else f"{avg:.1f}")
            lines.append("| " + " | ".join(list(table.labels[row]) + cells) + " |")
        lines.append("")
    if _any_mark(table):
        lines += [f"{NOT_ABOVE_MAJORITY}: mean not above the majority-class reference on that task.", ""]
    return "\n".join(lines)


def _tex_escape(s: str) -> str:
    return s.replace("\\", r"\textbackslash{}").replace("&", r"\&").replace("%", r"\%").replace("_", r"\_") \
        .replace("#", r"\#").replace("±", r"$\pm$").replace("—", "--").replace("–", "--").replace("†", r"$^\dagger$")


def to_latex(table: Table) -> str:
    out = ["% " + table.title, *["% " + _tex_escape(h) for h in table.header], r"\begin{table*}[t]", r"\centering",
           r"\small"]
    for block in table.blocks:
        n_cols = len(block.tasks) + (1 if block.averaged else 0)
        out.append(r"\begin{tabular}{ll" + "r" * n_cols + "}")
        out.append(r"\toprule")
        if block.title:
            out.append(r"\multicolumn{%d}{c}{%s} \\" % (n_cols + 2, _tex_escape(block.title)))
            out.append(r"\midrule")
        avg = ["Avg"] if block.averaged else []
        out.append(" & ".join(["Method", "Params"] + [_tex_escape(block.name(t)) for t in block.tasks] + avg) + r" \\")
        out.append(" & ".join(["", ""] + [m.capitalize() + "." for m in block.metrics] + [""] * len(avg)) + r" \\")
        out.append(r"\midrule")
        for row in block.rows:
            cells = [_tex_escape(table.cell(row, t).text() + table.mark(row, t)) for t in block.tasks]
            if block.averaged:
                a = table.block_avg(block, row)
                cells.append("--" if a is None else f"{a:.1f}")
            out.append(" & ".join([_tex_escape(x) for x in table.labels[row]] + cells) + r" \\")
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
    return written + write_diff(f"{prefix}.csv", f"{prefix}.diff", paper=table.paper, table=table.table)
