"""The papers' orderings checked on a table's CSV (replicate/orderings.py): each claim's
verdict follows the block averages, per-task significance follows Welch's test, rows a
table lacks are not guessed, and a file that is not a table's CSV is one line."""

import csv

import pandas as pd
import pytest

from replicate.cli import main
from replicate.orderings import check, seen_task_check, welch_greater
from replicate.tables import CSV_COLUMNS

GD = ("UNSEEN DATA / Gradient Descent", "UNSEEN TASK / Gradient Descent")
BB = "UNSEEN DATA / Black-Box Tuning"


def row(block, method, task, mean, std=1.0, n=3):
    values = dict.fromkeys(CSV_COLUMNS, "")
    values.update(paper="mp2", table="3", block=block, method=method, backbone="minilm-l6", task=task, shot=32,
                  metric="acc" if task != "avg" else "avg", mean=mean, std=std if task != "avg" else "", n=n,
                  n_expected=3, status="ok", setup="embedded", run="embedded")
    return values


def table(means, tmp_path=None):
    """A table's CSV rows from {(block, method): [task means]}: tasks t0, t1, ... and their average."""
    rows = []
    for (block, method), per_task in means.items():
        rows += [row(block, method, f"t{i}", m) for i, m in enumerate(per_task)]
        rows.append(row(block, method, "avg", sum(per_task) / len(per_task)))
    frame = pd.DataFrame(rows, columns=CSV_COLUMNS)
    if tmp_path is None:
        return frame
    path = tmp_path / "mp2_table3.csv"
    frame.to_csv(path, index=False, quoting=csv.QUOTE_MINIMAL)
    return path


def verdicts(frame):
    return {v.claim: v for v in check(frame)}


def test_mp2_spot_pt_holds_only_where_every_pair_holds_in_every_track():
    ok = {"pt": [50, 50], "spot": [60, 60], "mp2-shallow": [70, 70], "mp2-deep": [72, 72]}
    both = {(b, m): v for b in GD for m, v in ok.items()}
    assert verdicts(table(both))["MP2 > SPoT > PT"].word == "yes"
    one_track = dict(both)
    one_track[(GD[1], "spot")] = [40, 40]  # SPoT below PT on UNSEEN TASK (and so MP2 above SPoT there)
    assert verdicts(table(one_track))["MP2 > SPoT > PT"].word == "partly"
    reversed_ = {(b, m): [100 - x for x in v] for (b, m), v in both.items()}
    v = verdicts(table(reversed_))["MP2 > SPoT > PT"]
    assert v.word == "no" and len(v.comparisons) == 6 and not any(c.holds for c in v.comparisons)
    # deep > shallow reads the same rows the other way round
    assert verdicts(table(both))["deep > shallow (gradient)"].word == "yes"
    assert verdicts(table(reversed_))["deep > shallow (gradient)"].word == "no"


def test_black_box_claims_read_the_black_box_block_only():
    frame = table({(BB, "bbt"): [30, 30], (BB, "bbtv2"): [40, 40], (BB, "mp2-shallow"): [50, 50],
                   (BB, "mp2-deep"): [45, 45],
                   # the gradient block's rows of the same names say the opposite: they must not be read
                   (GD[0], "mp2-shallow"): [90, 90], (GD[0], "mp2-deep"): [10, 10]})
    v = verdicts(frame)
    assert v["MP2 black-box > BBTv2 > BBT"].word == "yes"
    assert v["deep > shallow (black-box)"].word == "no"
    assert [c.block for c in v["deep > shallow (black-box)"].comparisons] == [BB]


def test_a_row_the_table_lacks_is_not_measured_rather_than_failed():
    v = verdicts(table({(GD[0], "pt"): [50], (GD[0], "spot"): [60]}))
    assert v["pre-trained prompt > PT"].word == "yes"  # spot vs pt; Unified PPT's row is absent, not a loss
    assert len(v["pre-trained prompt > PT"].comparisons) == 1
    assert v["MP2 black-box > BBTv2 > BBT"].word == "not measured"


def test_per_task_significance_is_welchs_one_sided_test():
    # 3 seeds each: 70 ± 1 vs 50 ± 1 is far apart; 52 ± 10 vs 50 ± 10 is not
    assert welch_greater(70, 1, 3, 50, 1, 3) < 0.001
    assert welch_greater(52, 10, 3, 50, 10, 3) > 0.3
    assert welch_greater(50, 1, 3, 70, 1, 3) > 0.99  # one-sided: the other direction is not evidence
    assert welch_greater(40, 0, 3, 30, 0, 3) == 0.0 and welch_greater(30, 0, 3, 30, 0, 3) == 1.0
    frame = table({(GD[0], "pt"): [50, 50], (GD[0], "spot"): [70, 51]})
    c = verdicts(frame)["pre-trained prompt > PT"].comparisons[0]
    assert (c.tasks_ahead, c.tasks_significant, c.tasks) == (2, 1, 2)


def test_seen_tasks_line_per_pretrained_method_and_task():
    frame = table({(GD[0], "pt"): [50, 60], (GD[0], "mp2-shallow"): [70, 55], (GD[1], "mp2-shallow"): [99, 99]})
    lines = seen_task_check(frame)
    assert len(lines) == 2  # UNSEEN DATA's two tasks; UNSEEN TASK's are not seen in pre-training
    assert lines[0].startswith("mp2-shallow on t0: 70.0") and ": above" in lines[0]
    assert lines[1].startswith("mp2-shallow on t1: 55.0") and ": not above" in lines[1]


def test_cli_prints_the_verdicts_and_refuses_other_files_in_one_line(tmp_path, capsys):
    path = table({(b, m): v for b in GD for m, v in {"pt": [50], "spot": [60]}.items()}, tmp_path)
    assert main(["orderings", str(path)]) == 0
    out = capsys.readouterr().out
    assert "- pre-trained prompt > PT: yes" in out and "spot 60.0 > pt 50.0" in out
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    assert main(["orderings", str(other)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a regenerated table's CSV" in err[0]
    assert main(["orderings", str(tmp_path / "missing.csv")]) == 2
    assert "no table CSV" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["", "\x00\x01\x02"])
def test_an_empty_or_binary_file_is_one_line(tmp_path, capsys, text):
    path = tmp_path / "t.csv"
    path.write_text(text)
    assert main(["orderings", str(path)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_pretraining_dev_reads_the_selected_steps_scores_against_each_constant(tmp_path, capsys):
    import json

    summary = {"pretraining": "spot", "settings": {"config": {"steps": 300}}, "best_step": 200, "best_dev": 50.0,
               "dev_curve": [{"step": 100, "mean": 40.0, "tasks": {"a": 90.0, "b": 10.0, "q": 20.0}},
                             {"step": 200, "mean": 50.0, "tasks": {"a": 55.0, "b": 70.0, "q": 25.0}}],
               "tasks": [{"name": "a", "train": 9, "dev": 4, "dev_constant": 60.0},
                         {"name": "b", "train": 9, "dev": 4, "dev_constant": 50.0},
                         {"name": "q", "train": 9, "dev": 4, "dev_constant": None}]}
    path = tmp_path / "pretrain.json"
    path.write_text(json.dumps(summary))
    table_path = table({(GD[0], "pt"): [50], (GD[0], "spot"): [60]}, tmp_path)
    assert main(["orderings", str(table_path), "--pretrain", str(path)]) == 0
    out = capsys.readouterr().out
    # step 200's scores, not step 100's (where a was above its constant and b below)
    assert ("spot: best mean dev 50.00 at step 200 of 300; above a constant prediction on 1 of 2 tasks: "
            "a 55.0 (constant 60.0: -5.0); b 70.0 (constant 50.0: +20.0); q 25.0") in out
    old = dict(summary, tasks=[{"name": "a", "train": 9, "dev": 4}])  # written before dev_constant
    path.write_text(json.dumps(old))
    assert main(["orderings", str(table_path), "--pretrain", str(path)]) == 2
    assert "rerun it" in capsys.readouterr().err
