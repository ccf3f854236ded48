"""Self-checks of the transcribed published numbers (catch transcription slips)."""

import re
import statistics
import subprocess
import sys
from collections import Counter

import pytest

from replicate import published

from conftest import REPO


def row_key(r, with_shot):
    return (r["block"], r["method"], r["backbone"]) + ((r["shot"],) if with_shot else ())


@pytest.mark.parametrize("paper", published.PAPERS)
def test_every_csv_has_the_header_and_parses(paper):
    for path in published.table_files(paper):
        header = path.read_text(encoding="utf-8").splitlines()[0]
        assert header == ",".join(published.COLUMNS), path.name
        for r in published._read_csv(path):
            assert r["paper"] == paper and path.stem == f"{paper}_table{r['table']}"
            for field in ("mean", "std"):
                if r[field]:
                    float(r[field])
            if not r["mean"]:
                assert "not reported" in r["note"] or r["metric"] in ("include", "weights"), r


@pytest.mark.parametrize("paper", published.PAPERS)
def test_every_row_has_the_papers_number_of_cells(paper):
    """Each (block, row, column) of the shape file appears exactly once, and nothing else."""
    shape = published.shape(paper)["tables"]
    for path in published.table_files(paper):
        table = path.stem.split("_table")[1]
        assert table in shape, f"{path.name} has no shape"
        expected = Counter()
        for block, spec in shape[table]["blocks"].items():
            for row in spec["rows"]:
                method, backbone, *shot = row
                for column in spec["columns"]:
                    expected[(block, method, backbone) + tuple(str(s) for s in shot) + (column,)] += 1
        got = Counter()
        for r in published._read_csv(path):
            spec = shape[table]["blocks"][r["block"]]
            with_shot = any(len(row) == 3 for row in spec["rows"])
            got[row_key(r, with_shot) + (r["task"],)] += 1
        assert got == expected, f"{path.name}: {set(got) ^ set(expected)}"
        assert max(got.values()) == 1


def averages_off_by_more_than_rounding(paper):
    """(table, block, method, backbone, shot, column) of printed averages that are off."""
    shape = published.shape(paper)["tables"]
    off = {}
    for path in published.table_files(paper):
        table = path.stem.split("_table")[1]
        rows = published._read_csv(path)
        for block, spec in shape[table]["blocks"].items():
            for avg_col, covered in (spec.get("averages") or {}).items():
                if not covered:
                    continue
                by_row = {}
                for r in rows:
                    if r["block"] == block:
                        by_row.setdefault((r["method"], r["backbone"], r["shot"]), {})[r["task"]] = r["mean"]
                for (method, backbone, shot), cells in by_row.items():
                    printed, parts = cells.get(avg_col, ""), [cells.get(c, "") for c in covered]
                    if not printed or not all(parts):
                        continue
                    mean = statistics.fmean(float(p) for p in parts)
                    if abs(float(printed) - mean) > published.average_tolerance(printed, parts) + 1e-9:
                        off[(table, block, method, backbone, shot, avg_col)] = (printed, mean)
    return off


@pytest.mark.parametrize("paper", published.PAPERS)
def test_printed_averages_match_their_cells_or_are_errata(paper):
    header = (published.DATA_DIR / f"{paper}_errata.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header == ",".join(published.ERRATA_COLUMNS)
    off = averages_off_by_more_than_rounding(paper)
    listed = {(e["table"], e["block"], e["method"], e["backbone"], e["shot"], e["column"])
              for e in published.errata(paper)}
    assert set(off) == listed, {"not in errata": set(off) - listed, "errata that are not off": listed - set(off)}


def test_names_are_consistent_across_papers():
    ids = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
    all_rows = published.rows()
    for field in ("method", "task"):
        names = {r[field] for r in all_rows}
        assert all(ids.match(n) for n in names), sorted(n for n in names if not ids.match(n))
    backbones = {r["backbone"] for r in all_rows} - {""}
    assert all(ids.match(b) for b in backbones)
    tasks = {r["task"] for r in all_rows}
    # one spelling per dataset across papers
    assert not tasks & {"sst2", "stsb", "mnli-m", "yelp", "record-"}


def test_cells_quoted_from_a_registry_paper_equal_that_papers_cells():
    """MP2 quotes its CPM-2 rows from the PPT paper and ComPT its MPT* row from MPT: two
    transcriptions of one number must agree (MP2's "PPT" is the PPT paper's Unified PPT)."""
    checked = 0
    for row in published.rows():
        quoted_paper = published.SOURCE_PAPERS.get(row["source"])
        if not quoted_paper or not row["mean"]:
            continue
        same = [(r["mean"], r["std"]) for r in published.rows(quoted_paper)
                if (r["method"], r["backbone"], r["task"], r["shot"]) ==
                (row["method"], row["backbone"], row["task"], row["shot"])]
        assert any(m == row["mean"] and (not row["std"] or s == row["std"]) for m, s in same), (row, same)
        checked += 1
    assert checked == 21 + 9


def test_cli_prints_rows_with_the_header():
    done = subprocess.run([sys.executable, "-m", "replicate", "published", "--paper", "mp2", "--table", "3"],
                          capture_output=True, text=True, cwd=REPO)
    lines = done.stdout.splitlines()
    assert lines[0] == ",".join(published.COLUMNS)
    assert len(lines) - 1 == len(published.rows("mp2", "3")) == 256
    assert "mp2,3,UNSEEN DATA / Gradient Descent,model-tuning,cpt-large,amazon,32,acc,47.3,5.3,393M" in done.stdout
