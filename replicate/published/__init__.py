"""Published numbers: data transcribed from the papers, kept apart from anything computed.

Files live in ``replicate/published/data/`` (conventions in ``CONVENTIONS.md``): one CSV per
paper table, one shape file per paper (the table's blocks, rows and columns, written apart
from the rows so tests can check the CSVs against it), and one errata file per paper (the
paper's own averages that disagree with its printed cells beyond rounding). Nothing in this
package writes to those files.
"""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from ..errors import ConfigError

DATA_DIR = Path(__file__).resolve().parent / "data"
COLUMNS = ["paper", "table", "block", "method", "backbone", "task", "shot", "metric", "mean", "std", "params",
           "source", "note"]
ERRATA_COLUMNS = ["paper", "table", "block", "method", "backbone", "shot", "column", "printed", "mean_of_cells",
                  "note"]
PAPERS = ("mp2", "ppt", "mpt", "compt")
# Sources (the `source` column) that are themselves papers of this registry: a quoted cell
# must equal the cell of the quoted paper (tests/test_published.py checks it).
SOURCE_PAPERS = {"gu2021-ppt": "ppt", "wang2023-mpt": "mpt"}


def _read_csv(path: Path) -> List[Dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def table_files(paper: Optional[str] = None) -> List[Path]:
    papers = [paper] if paper else PAPERS
    out = []
    for p in papers:
        out += sorted(DATA_DIR.glob(f"{p}_table*.csv"), key=lambda f: _table_sort_key(f.stem.split("_table")[1]))
    return out


def _table_sort_key(label: str):
    return (0, int(label), "") if label.isdigit() else (1, 0, label)


def rows(paper: Optional[str] = None, table: Optional[str] = None) -> List[Dict[str, str]]:
    """Every transcribed cell (optionally of one paper and one table), in file order."""
    if paper is not None and paper not in PAPERS:
        raise ConfigError(f"unknown paper {paper!r}; known: {', '.join(PAPERS)}")
    out = []
    for path in table_files(paper):
        if table is not None and path.stem.split("_table")[1] != str(table).lower():
            continue
        out += _read_csv(path)
    if table is not None and not out:
        raise ConfigError(f"no published table {table!r} for paper {paper or '(any)'}")
    return out


@lru_cache(maxsize=None)
def shape(paper: str) -> dict:
    with open(DATA_DIR / f"{paper}.shape.json", encoding="utf-8") as f:
        return json.load(f)


def errata(paper: str) -> List[Dict[str, str]]:
    return _read_csv(DATA_DIR / f"{paper}_errata.csv")


def shots_text(shots: Iterable[str]) -> str:
    """Stated shot values in numeric order ("4, 16, 32, full"); empty values left out."""
    stated = {s for s in shots if s}
    return ", ".join(sorted(stated, key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s)))


def decimals(text: str) -> int:
    return max(0, -Decimal(text).as_tuple().exponent)


def average_tolerance(printed_avg: str, cells: Iterable[str]) -> float:
    """How far a printed average may sit from the mean of its printed cells by rounding alone:
    half a unit of the average's last digit plus half a unit of the coarsest cell's."""
    coarsest = min(decimals(c) for c in cells)
    return 0.5 * 10 ** -decimals(printed_avg) + 0.5 * 10 ** -coarsest


def write_csv(rows_: List[Dict[str, str]], out) -> None:
    w = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    w.writerows(rows_)
