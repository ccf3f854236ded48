"""The diff of a regenerated table against the published registry."""

import csv
import subprocess
import sys

import pytest

from replicate import published
from replicate.diff import DIFF_COLUMNS, VERBALIZER_NOTE, diff_rows, verdict

from conftest import REPO


def regenerated_row(**kw):
    row = {"paper": "mp2", "table": "3", "block": "UNSEEN DATA / Gradient Descent", "method": "pt",
           "backbone": "cpt-large", "task": "amazon", "shot": "32", "metric": "acc", "mean": "", "std": "",
           "n": "5", "setup": "paper", "run": "r"}
    row.update(kw)
    return row


def published_cell(method, backbone, task):
    (p,) = [r for r in published.rows("mp2", "3") if (r["method"], r["backbone"], r["task"]) == (method, backbone, task)
            and r["block"] == "UNSEEN DATA / Gradient Descent"]
    return float(p["mean"]), float(p["std"])


def test_verdicts():
    assert verdict(33.0, 32.9, 2.4) == "within 1 std"
    assert verdict(37.0, 32.9, 2.4) == "within 2 std"
    assert verdict(40.0, 32.9, 2.4) == "outside 2 std"
    assert verdict(40.0, 32.9, None) == "no published std"
    assert verdict(40.0, None, None) == "no published number"
    assert verdict(None, 42.5, 2.0, "gu2021-ppt") == "published only (quoted from gu2021-ppt)"


def test_paper_setup_cell_is_compared_with_its_published_cell():
    mean, std = published_cell("pt", "cpt-large", "amazon")
    rows = diff_rows([regenerated_row(mean=str(mean + std / 2), std="1.0")])
    (mine,) = [r for r in rows if r["regenerated_mean"]]
    assert mine["verdict"] == "within 1 std" and mine["setup"] == "paper setup"
    assert float(mine["delta"]) == round(std / 2, 2)
    quoted = [r for r in rows if r["backbone"] == "cpm-2" and r["published_mean"]]
    assert quoted and all(r["verdict"] == "published only (quoted from gu2021-ppt)" for r in quoted)
    # every published cell of the table appears once
    assert len(rows) == len(published.rows("mp2", "3"))


def test_embedded_cell_is_never_a_reproduction():
    rows = diff_rows([regenerated_row(backbone="minilm-l6", task="bbc-topic", mean="80.0", std="2.0", n="3",
                                      setup="embedded")])
    (mine,) = [r for r in rows if r["regenerated_mean"]]
    assert mine["verdict"] == "no published number" and mine["published_mean"] == ""
    assert mine["setup"] == "differs: embedded data; backbone minilm-l6 (paper: cpt-large); 3 seeds (paper: 5)"


def test_setup_names_a_shot_or_budget_the_paper_did_not_use():
    ppt_row = dict(regenerated_row(paper="ppt", table="5", block="English Tasks", backbone="t5-xxl",
                                   task="yahoo-answers", shot="8", setup="paper", n="5"), mean="50.0", epochs="12")
    (mine,) = [r for r in diff_rows([ppt_row]) if r["regenerated_mean"]]
    # PPT trains FT and PT for 50 epochs, and reads answers with T5's decoder, not a span head
    assert mine["setup"] == f"differs: {VERBALIZER_NOTE}; 12 epochs (paper: 50)"
    (mine,) = [r for r in diff_rows([dict(ppt_row, shot="32", epochs="50")]) if r["regenerated_mean"]]
    assert mine["setup"] == f"differs: {VERBALIZER_NOTE}; shot 32 (paper: 8)"
    assert mine["verdict"] == "no published number"


def test_setup_says_how_pt_in_the_mcc_layout_reads_its_answer():
    row = dict(regenerated_row(paper="ppt", table="5", block="Chinese Tasks", backbone="cpm-2", method="pt-mc",
                               task="tnews", shot="8", setup="paper", n="5"), mean="11.0")
    (mine,) = [r for r in diff_rows([row]) if r["regenerated_mean"]]
    assert mine["setup"] == "differs: answer read by an MRC span head over the option letters (paper: T5/CPM-2 " \
                            "generate the letter)"
    mp2 = regenerated_row(method="ppt-unified", mean="50.0", n="5", setup="paper")
    (mine,) = [r for r in diff_rows([mp2]) if r["regenerated_mean"]]
    assert "MP2 A.1 does not say how its PPT reads it" in mine["setup"]


def test_cli_diffs_any_table_file(tmp_path):
    path = tmp_path / "elsewhere.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(regenerated_row()))
        w.writeheader()
        w.writerow(regenerated_row(mean="30.0", std="1.0"))
    done = subprocess.run([sys.executable, "-m", "replicate", "diff", str(path)], capture_output=True, text=True,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr
    out = list(csv.DictReader(open(tmp_path / "elsewhere.diff.csv")))
    assert list(out[0]) == DIFF_COLUMNS
    assert "Regenerated vs published" in (tmp_path / "elsewhere.diff.md").read_text()
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    done = subprocess.run([sys.executable, "-m", "replicate", "diff", str(bad)], capture_output=True, text=True,
                          cwd=REPO)
    assert done.returncode == 2 and "not a table CSV" in done.stderr
    empty = tmp_path / "empty.csv"
    empty.write_text(",".join(regenerated_row()) + "\n")
    done = subprocess.run([sys.executable, "-m", "replicate", "diff", str(empty)], capture_output=True, text=True,
                          cwd=REPO)
    assert done.returncode == 2 and "no rows: nothing says which published table" in done.stderr


def welch_two_sided_by_hand(m1, s1, n1, m2, s2, n2):
    """Welch's t and Welch-Satterthwaite degrees of freedom written out, then the t distribution's tails."""
    from scipy.stats import t as student_t

    v1, v2 = s1 ** 2 / n1, s2 ** 2 / n2
    t = (m1 - m2) / (v1 + v2) ** 0.5
    df = (v1 + v2) ** 2 / (v1 ** 2 / (n1 - 1) + v2 ** 2 / (n2 - 1))
    return 2 * student_t.sf(abs(t), df)


def test_welch_p_from_both_sides_mean_std_and_seeds():
    """The regenerated cell (3 seeds) against MP2's (5 seeds, MP2 §4.2): the two-sided Welch p from
    both sides' mean, std and n, beside the std verdict, which stays."""
    mean, std = published_cell("pt", "cpt-large", "amazon")
    rows = diff_rows([regenerated_row(mean=str(mean + 4), std="1.5", n="3")])
    (mine,) = [r for r in rows if r["regenerated_mean"]]
    expected = welch_two_sided_by_hand(mean + 4, 1.5, 3, mean, std, 5)
    assert mine["published_n"] == "5" and mine["welch_p"] == f"{expected:.3g}"
    assert 0.001 < expected < 0.5  # a case where the number says something
    assert mine["verdict"] == ("within 2 std" if 4 <= 2 * std else "outside 2 std")
    # the same cell a seed short of a std: no p invented
    (one,) = [r for r in diff_rows([regenerated_row(mean=str(mean), std="", n="1")]) if r["regenerated_mean"]]
    assert one["welch_p"] == "no regenerated std"
    (two,) = [r for r in diff_rows([regenerated_row(mean=str(mean), std="0.0", n="1")]) if r["regenerated_mean"]]
    assert two["welch_p"] == "fewer than 2 runs"


def test_welch_p_says_what_the_published_side_lacks():
    # MP2 quotes CPM-2's cells from PPT (5 seeds, PPT §4.1): their seeds are PPT's
    quoted = regenerated_row(backbone="cpm-2", method="model-tuning", mean="44.0", std="1.0", n="5")
    (mine,) = [r for r in diff_rows([quoted]) if r["regenerated_mean"]]
    assert mine["source"] == "gu2021-ppt" and mine["published_n"] == "5" and float(mine["welch_p"]) < 1
    # MP2 prints its averages without a std
    avg = regenerated_row(method="model-tuning", task="avg", metric="avg", mean="60.0", std="", n="")
    (mine,) = [r for r in diff_rows([avg]) if r["regenerated_mean"]]
    assert mine["welch_p"] == "no published std, no regenerated std" and mine["verdict"] == "no published std"
    # MPT quotes ATTEMPT's cells (asai2022-attempt), a paper outside the registry: its seeds are unknown
    (attempt,) = [r for r in published.rows("mpt", "1") if r["source"] == "asai2022-attempt" and r["mean"]][:1]
    row = {**{k: attempt[k] for k in ("paper", "table", "block", "method", "backbone", "task", "shot", "metric")},
           "mean": "50.0", "std": "1.0", "n": "3", "setup": "paper", "run": "r"}
    (mine,) = [r for r in diff_rows([row]) if r["regenerated_mean"]]
    assert mine["published_n"] == "" and "no published seeds" in mine["welch_p"]


def test_published_n_is_the_seeds_of_the_paper_a_cell_comes_from():
    """A quoted cell's runs are its source paper's, not the quoting paper's (ComPT, 3 seeds,
    quoting a PPT cell would be over PPT's 5); the published cells no regenerated row has carry
    theirs too."""
    from replicate.diff import published_runs, welch_text

    assert (published_runs("compt", "gu2021-ppt"), published_runs("compt", ""), published_runs("mp2", "")) == (5, 3, 5)
    assert published_runs("mpt", "asai2022-attempt") is None
    rows = diff_rows([regenerated_row(mean="50.0", std="1.0", n="5")], tables={("mp2", "3"), ("compt", "8")})
    only_published = {(r["paper"], r["source"], r["published_n"]) for r in rows
                      if not r["regenerated_mean"] and r["published_mean"]}
    assert only_published == {("mp2", "", "5"), ("mp2", "gu2021-ppt", "5"), ("compt", "", "3"),
                              ("compt", "wang2023-mpt", "3"), ("compt", "asai2022-attempt", "")}
    # a published side of one run has no sample std to test with
    assert welch_text(50.0, 1.0, 3, 40.0, 1.0, 1) == "fewer than 2 runs"


def test_a_row_with_an_extra_field_keeps_its_columns(tmp_path):
    """pandas would make a header one field short an index (every column shifted by one)."""
    import pandas as pd

    from replicate.diff import read_table_csv

    path = tmp_path / "ragged.csv"
    path.write_text("paper,table,block,method,backbone,task,shot,metric,mean\nmp2,3,b,pt,x,t,32,acc,1.0,extra\n")
    with pytest.warns(pd.errors.ParserWarning):  # pandas says the extra field is dropped
        (row,) = read_table_csv(str(path))
    assert (row["paper"], row["table"], row["mean"]) == ("mp2", "3", "1.0")
