"""Aggregation: mean ± std per (method, task, shot) in any paper table's layout, nothing dropped,
embedded tasks never under a paper column."""

import csv
import io
import statistics

import pytest

from replicate.config import cells, check_config, split_path
from replicate.diff import read_table_csv
from replicate.errors import ConfigError
from replicate.io import write_json_atomic
from replicate.tables import (OWN_TASKS_BLOCK, build_table, format_count, regenerated_methods, to_csv, to_latex,
                              to_markdown, write_table)

from conftest import paper_files, write_cell


def fake_result(cfg, cell, score, status="ok"):
    """A result file as train writes it (the fields aggregation reads and checks)."""
    write_cell(cfg, cell, score, status)


def csv_rows(table):
    return list(csv.DictReader(io.StringIO(to_csv(table))))


def test_mean_std_missing_and_failed_cells(tiny_config):
    cfg = check_config(tiny_config)
    cfg["grid"]["tasks"] = ["bbc-topic", "review-polarity", "hedge-detection"]  # both tracks
    cfg["grid"]["methods"] = ["pt", "ptv2"]
    scores = {8: 60.0, 13: 70.0}
    for cell in cells(cfg):
        if cell.method == "pt" and cell.task == "bbc-topic":
            fake_result(cfg, cell, scores[cell.seed])
        elif cell.method == "pt" and cell.task == "review-polarity":
            fake_result(cfg, cell, 50.0, status="ok" if cell.seed == 8 else "failed")
        elif cell.method == "ptv2" and cell.task == "bbc-topic":
            fake_result(cfg, cell, None, status="failed")
    write_json_atomic(split_path(cfg, "bbc-topic", 8, 8), {"label_counts": {"test": {"a": 3, "b": 1}}})
    table = build_table(cfg, "mp2", "3")
    # embedded tasks go to the block of their track; the black-box blocks have no method of this run
    assert [(b.title, b.tasks) for b in table.blocks] == [
        ("UNSEEN DATA / Gradient Descent", ["bbc-topic", "hedge-detection"]),
        ("UNSEEN TASK / Gradient Descent", ["review-polarity"])]
    pt = table.cells[("pt", 8, "bbc-topic")]
    assert pt.mean == 65.0 and pt.std == statistics.stdev([60.0, 70.0]) and pt.text() == "65.0 ± 7.1"
    assert table.cells[("pt", 8, "review-polarity")].text() == "50.0 (n=1/2)"
    assert table.cells[("ptv2", 8, "bbc-topic")].text() == "failed (2/2)"
    assert table.cells[("ptv2", 8, "hedge-detection")].text() == "missing"
    assert table.cells[("majority-class", 0, "bbc-topic")].mean == 75.0

    md = to_markdown(table)
    assert "| Prompt Tuning | 128 (+64 head) | 65.0 ± 7.1† | missing | — |" in md  # below majority (75.0)
    assert "†: mean not above the majority-class reference" in md
    assert "Columns bbc-topic, hedge-detection are this run's tasks, not the paper's." in md
    rows = csv_rows(table)
    statuses = {(r["method"], r["task"]): r["status"] for r in rows}
    assert statuses[("pt", "bbc-topic")] == "ok" and statuses[("pt", "review-polarity")] == "partial"
    assert statuses[("ptv2", "bbc-topic")] == "failed" and statuses[("ptv2", "hedge-detection")] == "missing"
    assert len([r for r in rows if r["method"] == "pt"]) == 3 + 2  # 3 tasks + one avg per block
    # what the diff reads from the CSV: mean, sample std (4 decimals) and the runs behind them
    pt_rows = {(r["block"], r["task"]): [r[k] for k in ("mean", "std", "n", "n_expected", "status")]
               for r in rows if r["method"] == "pt"}
    assert pt_rows == {
        ("UNSEEN DATA / Gradient Descent", "bbc-topic"): ["65.0000", f"{statistics.stdev([60.0, 70.0]):.4f}", "2", "2",
                                                          "ok"],
        ("UNSEEN DATA / Gradient Descent", "hedge-detection"): ["", "", "0", "2", "missing"],
        ("UNSEEN DATA / Gradient Descent", "avg"): ["", "", "", "", "incomplete"],  # a column has no mean
        ("UNSEEN TASK / Gradient Descent", "review-polarity"): ["50.0000", "", "1", "2", "partial"],
        ("UNSEEN TASK / Gradient Descent", "avg"): ["50.0000", "", "", "", "ok"]}
    assert all(r["note"].startswith("stand-in") for r in rows if r["task"] != "avg")
    tex = to_latex(table)
    assert r"\toprule" in tex and r"65.0 $\pm$ 7.1" in tex


def test_a_cell_is_the_mean_of_its_seeds_and_a_tie_with_majority_is_not_above_it(tiny_config):
    """Three skewed seeds (mean 75, median 65): the cell prints their mean and sample std, and a
    mean equal to the majority-class reference gets the dagger (not above it)."""
    tiny_config["grid"].update(seeds=[8, 13, 42], methods=["pt"], tasks=["bbc-topic"])
    cfg = check_config(tiny_config)
    scores = {8: 60.0, 13: 65.0, 42: 100.0}
    for cell in cells(cfg):
        fake_result(cfg, cell, scores[cell.seed])
    write_json_atomic(split_path(cfg, "bbc-topic", 8, 8), {"label_counts": {"test": {"a": 3, "b": 1}}})
    table = build_table(cfg, "mp2", "3")
    pt = table.cells[("pt", 8, "bbc-topic")]
    assert (pt.mean, pt.std) == (75.0, statistics.stdev(scores.values()))
    assert table.cells[("majority-class", 0, "bbc-topic")].mean == 75.0
    assert "| 75.0 ± 21.8† |" in to_markdown(table)


def test_paper_tasks_fill_paper_columns_and_the_paper_average(tiny_config):
    """A run on MP2's own tasks: each under its column, and Avg only when every averaged column ran."""
    files = paper_files("tnews", "cmnli")
    tiny_config.update(paper_data_files=files)
    tiny_config["grid"].update(tasks=["cmnli", "tnews"], methods=["pt"], backbone="tiny-bert")
    tiny_config["methods"]["pt"]["max_length"] = 128  # tnews' 15 options take 46 tokens
    cfg = check_config(tiny_config)
    for cell in cells(cfg):
        fake_result(cfg, cell, 40.0 + cell.seed)
    table = build_table(cfg, "mp2", "3")
    assert [(b.title, b.tasks, b.stand_ins, b.averaged) for b in table.blocks] == [
        ("UNSEEN DATA / Gradient Descent", ["cmnli"], [], None),
        ("UNSEEN TASK / Gradient Descent", ["tnews"], [], None)]
    rows = csv_rows(table)
    assert {r["task"] for r in rows} == {"cmnli", "tnews"}  # no average over a subset of the paper's columns
    assert not any(r["note"] for r in rows)


def test_multi_shot_rows_and_stand_in_block(tiny_config):
    cfg = check_config(tiny_config)
    cfg["grid"].update(shots=[4, 16], methods=["pt"])
    for cell in cells(cfg):
        fake_result(cfg, cell, float(cell.shot))
    table = build_table(cfg, "mpt", "3")  # MPT's few-shot table: rows at k = 4, 16, 32
    (block,) = table.blocks
    assert block.title == OWN_TASKS_BLOCK and block.tasks == ["bbc-topic", "fine-foods"]
    assert block.rows == [("pt", 4), ("pt", 16), ("majority-class", 0)]
    assert [table.labels[r][0] for r in block.rows[:2]] == ["Prompt Tuning (k=4)", "Prompt Tuning (k=16)"]
    by_shot = {(r["shot"], r["task"]): r["mean"] for r in csv_rows(table) if r["method"] == "pt"}
    assert by_shot[("16", "bbc-topic")] == "16.0000" and by_shot[("4", "avg")] == "4.0000"
    md = to_markdown(table)
    assert "the paper's cells are at shot 4, 16, 32" in md
    assert ("paper rows not regenerated: adapters, hyperformer, attempt (not built yet); "
            "model-tuning, spot, mpt (not in this run's grid)") in md


def test_table_without_regenerated_rows_still_diffs_its_published_cells(tiny_config, tmp_path):
    cfg = check_config(tiny_config)
    assert regenerated_methods(cfg, "compt", "5") == []
    assert regenerated_methods(cfg, "ppt", "5") == ["model-tuning", "pt"]
    table = build_table(cfg, "compt", "5")
    assert table.blocks == []
    assert ("paper rows not regenerated: compt-ssum (not per-cell scores: the masking evaluation's confusion "
            "counts") in to_markdown(table)
    paths = write_table(table, str(tmp_path / "compt_table5"))
    assert read_table_csv(str(tmp_path / "compt_table5.csv"), allow_empty=True) == []
    diff = list(csv.DictReader(open(tmp_path / "compt_table5.diff.csv")))
    assert diff and {r["verdict"] for r in diff} <= {"no regenerated number", "not reported"}
    assert len(paths) == 5


def test_unknown_table_is_a_clear_error(tiny_config):
    cfg = check_config(tiny_config)
    with pytest.raises(ConfigError, match="compt has no results table '9'"):
        build_table(cfg, "compt", "9")
    with pytest.raises(ConfigError, match="unknown paper 'lester'"):
        build_table(cfg, "lester", "1")


def test_format_count_matches_the_papers_style():
    assert [format_count(n) for n in (308, 7_200, 51_200, 1_228_800, 393_000_000, 11_000_000_000)] == \
        ["308", "7.2K", "51.2K", "1.2M", "393M", "11B"]


def test_black_box_rows_router_only_and_minutes(tiny_config):
    """MP2 Table 3's Black-Box block reads the black-box cells (not gradient MP2's of the same
    row name), its Router-only row reads stage I of the same cells, and Table 4 their minutes."""
    tiny_config["grid"]["methods"] = ["mp2-shallow", "mp2-shallow-black-box"]
    tiny_config["grid"]["tasks"] = ["bbc-topic"]
    tiny_config["protocol"]["downstream_reserve"] = 0.2
    tiny_config["methods"] = {"mp2-shallow": {"prompt_length": 4, "epochs": 2, "stage1_epochs": 1, "n_prompts": 4},
                              "mp2-shallow-black-box": {"prompt_length": 4, "budget": 6, "router_budget": 2,
                                                        "popsize": 4, "intrinsic_dim": 8, "n_prompts": 4}}
    tiny_config["pretraining"] = {"mp2-shallow": {"prompt": "shallow", "tasks": ["bbc-topic", "bbc-title-topic"],
                                                  "prompt_length": 4, "n_prompts": 4, "intrinsic_dim": 8,
                                                  "steps": 2}}
    cfg = check_config(tiny_config)
    for cell in cells(cfg):
        if cell.method == "mp2-shallow":
            fake_result(cfg, cell, 10.0)
        else:
            write_cell(cfg, cell, 40.0 + cell.seed, stages=[
                {"name": "I: router", "wall_s": 60.0, "group_seeds": 2, "test_metrics": {"acc": 30.0}},
                {"name": "II: prompt", "wall_s": 540.0, "group_seeds": 2}])
    table = build_table(cfg, "mp2", "3")
    assert [b.title for b in table.blocks] == ["UNSEEN DATA / Gradient Descent", "UNSEEN DATA / Black-Box Tuning"]
    assert table.cells[("mp2-shallow", 8, "bbc-topic")].mean == 10.0
    assert table.cells[("mp2-shallow@black-box", 8, "bbc-topic")].mean == 50.5
    assert table.cells[("mp2-shallow-router-only@black-box", 8, "bbc-topic")].mean == 30.0
    assert table.labels[("mp2-shallow-router-only@black-box", 8)] == ("Shallow MP2 (black-box): stage I alone", "4")
    rows = {(r["block"], r["method"]): r for r in csv_rows(table) if r["task"] == "bbc-topic"}
    assert rows[("UNSEEN DATA / Black-Box Tuning", "mp2-shallow")]["mean"] == "50.5000"
    assert rows[("UNSEEN DATA / Gradient Descent", "mp2-shallow")]["mean"] == "10.0000"
    minutes = build_table(cfg, "mp2", "4")
    (block,) = minutes.blocks
    assert block.metrics == ["minutes"] and ("majority-class", 0) not in block.rows
    assert minutes.cells[("mp2-shallow-stage1-only@black-box", 8, "bbc-topic")].mean == 0.5  # 60 s / 2 seeds
    assert minutes.cells[("mp2-shallow@black-box", 8, "bbc-topic")].mean == 5.0
    assert minutes.cells[("mp2-shallow@black-box", 8, "bbc-topic")].text() == "5.00 ± 0.00"  # as Table 4 prints


def test_ablation_rows_follow_the_row_they_vary(tiny_config):
    """A variant no paper prints (MP2's eq 1 router, ``Method.ablation_of``) gets a row of its
    own right under the row it varies, read from its own cells; its diff rows have no
    published number."""
    tiny_config["grid"]["methods"] = ["mp2-shallow-eq1", "pt", "mp2-shallow"]
    tiny_config["grid"]["tasks"] = ["bbc-topic"]
    tiny_config["protocol"]["downstream_reserve"] = 0.2
    small = {"prompt_length": 4, "epochs": 2, "stage1_epochs": 1, "n_prompts": 4}
    tiny_config["methods"] = {"pt": {"epochs": 1}, "mp2-shallow": small, "mp2-shallow-eq1": small}
    upstream = {"prompt": "shallow", "tasks": ["bbc-topic", "bbc-title-topic"], "prompt_length": 4, "n_prompts": 4,
                "intrinsic_dim": 8, "steps": 2}
    tiny_config["pretraining"] = {"mp2-shallow": upstream, "mp2-shallow-eq1": {**upstream, "combine": "paper"}}
    cfg = check_config(tiny_config)
    score = {"pt": 20.0, "mp2-shallow": 30.0, "mp2-shallow-eq1": 40.0}
    for cell in cells(cfg):
        fake_result(cfg, cell, score[cell.method])
    table = build_table(cfg, "mp2", "3")
    (block,) = [b for b in table.blocks if b.title == "UNSEEN DATA / Gradient Descent"]
    assert [m for m, _ in block.rows] == ["pt", "mp2-shallow", "mp2-shallow-eq1", "majority-class"]
    assert table.cells[("mp2-shallow-eq1", 8, "bbc-topic")].mean == 40.0
    assert table.labels[("mp2-shallow-eq1", 8)][0] == "Shallow MP2, eq 1 router"
    assert "mp2-shallow-eq1" in regenerated_methods(cfg, "mp2", "3")
    # without the row it varies, an ablation has no place in the paper's table
    cfg["grid"]["methods"] = ["pt", "mp2-shallow-eq1"]
    assert "mp2-shallow-eq1" not in regenerated_methods(cfg, "mp2", "3")


def _mpt_config(tmp_path, tasks, shots, methods=("model-tuning", "pt")):
    """config/paper-mpt.yaml over ``tasks``, ``shots`` and grid ``methods`` (None: the
    config's), read from the Hub-schema fixtures."""
    import yaml

    from conftest import REPO, t2t_files

    cfg = yaml.safe_load((REPO / "config" / "paper-mpt.yaml").read_text())
    cfg["results_dir"] = str(tmp_path / "results")
    cfg["grid"].update(tasks=list(tasks), shots=list(shots))
    if methods is not None:
        cfg["grid"]["methods"] = list(methods)
    cfg["paper_data_files"] = t2t_files(*tasks)
    for method in cfg["methods"].values():
        method["by_task"] = {t: v for t, v in method.get("by_task", {}).items() if t in tasks}
    return check_config(cfg, check_data=False)


def test_a_table_reads_only_the_shots_it_prints_and_no_other_tables_paper_tasks(tmp_path):
    """MPT's tables over one grid of shots full and 4: Table 1 reads the full-data cells of its
    GLUE/SuperGLUE tasks, Table 2 those of its MRQA task, Table 3 the 4-shot cells of BoolQ;
    a paper-suite task of another table never stands in for a column (NQ is no Table 1 task)."""
    from replicate.config import groups
    from replicate.tables import standing_in_for, table_groups, table_shots, table_tasks

    cfg = _mpt_config(tmp_path, ["rte", "naturalquestions", "boolq"], ["full", 4])
    assert table_shots(cfg, "mpt", "1") == table_shots(cfg, "mpt", "2") == ["full"]
    assert table_shots(cfg, "mpt", "3") == [4]
    assert table_tasks(cfg, "mpt", "1") == ["rte", "boolq"]
    assert table_tasks(cfg, "mpt", "2") == ["naturalquestions"]
    assert table_tasks(cfg, "mpt", "3") == ["boolq"]
    table1 = {(g.method, g.task, g.shot) for g in table_groups(cfg, "mpt", "1")}
    assert table1 == {(m, t, "full") for m in ("pt", "model-tuning") for t in ("rte", "boolq")}
    assert {(g.task, g.shot) for g in table_groups(cfg, "mpt", "3")} == {("boolq", 4)}
    assert len(groups(cfg)) == 2 * 3 * 2  # the grid has every (method, task, shot); each table reads its own
    for cell in cells(cfg):
        fake_result(cfg, cell, 50.0 if cell.shot == "full" else 10.0)
    table = build_table(cfg, "mpt", "1")
    shown = {t for b in table.blocks for t in b.tasks}
    assert shown == {"rte", "boolq"} and not any(b.stand_ins for b in table.blocks)
    assert {s for b in table.blocks for _, s in b.rows if s} == {"full"}
    assert {r["mean"] for r in csv_rows(table) if r["method"] == "pt" and r["task"] in shown} == {"50.0000"}
    # an embedded task does stand in for the columns of a table (it is no paper's column)
    from replicate import published

    columns = {c for b in published.shape("mpt")["tables"]["1"]["blocks"].values() for c in b["columns"]}
    grid = {"grid": {"tasks": ["rte", "naturalquestions", "bbc-topic"]}}
    assert standing_in_for(grid, columns, "mpt") == ["bbc-topic"]
    # a task of another paper's table does stand in (MP2's tasks in PPT's tables)
    assert standing_in_for({"grid": {"tasks": ["chnsent", "naturalquestions"]}}, columns, "mpt") == ["chnsent"]


def test_a_table_that_prints_none_of_the_grids_shots_reads_them_all_and_its_stand_ins(tiny_config):
    from replicate.config import groups
    from replicate.tables import table_groups, table_shots, table_tasks

    tiny_config["grid"]["shots"] = [8, 16]  # MPT Table 3 prints 4, 16, 32
    cfg = check_config(tiny_config)
    assert table_shots(cfg, "mpt", "3") == [16]
    cfg["grid"]["shots"] = [8]
    assert table_shots(cfg, "mpt", "3") == [8]  # a run that stands in for the paper's setup
    assert table_tasks(cfg, "mpt", "3") == ["bbc-topic", "fine-foods"]  # the embedded tasks stand in
    assert {(g.method, g.task) for g in table_groups(cfg, "mpt", "3")} == {
        (m, t) for m in ("model-tuning", "pt") for t in ("bbc-topic", "fine-foods")}
    assert len(table_groups(cfg, "mpt", "3")) < len(groups(cfg))  # ptv2 is no row of MPT Table 3


def test_the_epochs_column_is_each_cells_own_by_task_and_by_shot():
    """A method's epochs may differ by shot and task (ComPT doubles them for k <= 10; MPT
    trains large tasks 10 epochs, MRQA 5): each row of the CSV says its cells' epochs."""
    import copy

    from replicate.config import check_config
    from replicate.tables import build_table, to_csv
    from conftest import TINY_CONFIG

    cfg = copy.deepcopy(TINY_CONFIG)
    cfg["grid"]["shots"] = [4, 8]
    cfg["methods"]["pt"].update(by_shot={4: {"epochs": 5}}, by_task={"fine-foods": {"epochs": 3}})
    rows = list(csv.DictReader(io.StringIO(to_csv(build_table(check_config(cfg), "mp2", "3")))))
    epochs = {(r["shot"], r["task"]): r["epochs"] for r in rows if r["method"] == "pt"}
    assert epochs[("4", "bbc-topic")] == "5" and epochs[("8", "bbc-topic")] == "2"
    assert epochs[("4", "fine-foods")] == "3" and epochs[("8", "fine-foods")] == "3"


def test_a_column_reads_the_metric_its_paper_prints_and_a_task_fills_the_column_of_its_printed_name(tmp_path):
    """CoLA's cells hold MCC and accuracy: MPT Table 1 prints MCC, ComPT Table 1 accuracy, and
    each reads its own. The English PAWS (``paws-en`` here, MP2's Chinese PAWS-X owns
    ``paws``) fills MPT Table 2's "paws" column, under that name, so the diff pairs it."""
    cfg = _mpt_config(tmp_path, ["cola", "paws-en"], ["full"])
    for cell in cells(cfg):
        metrics = {"mcc": 12.0, "acc": 70.0} if cell.task == "cola" else {"acc": 60.0}
        write_cell(cfg, cell, metrics["mcc" if cell.task == "cola" else "acc"], metrics=metrics)
    mpt1 = {r["task"]: r for r in csv_rows(build_table(cfg, "mpt", "1")) if r["method"] == "pt"}
    assert mpt1["cola"]["metric"] == "mcc" and mpt1["cola"]["mean"] == "12.0000"
    compt_cfg = dict(cfg, grid=dict(cfg["grid"], shots=["full"]))
    compt1 = {r["task"]: r for r in csv_rows(build_table(compt_cfg, "compt", "1")) if r["method"] == "pt"}
    assert compt1["cola"]["metric"] == "acc" and compt1["cola"]["mean"] == "70.0000"
    mpt2 = {r["task"]: r for r in csv_rows(build_table(cfg, "mpt", "2")) if r["method"] == "pt"}
    assert "paws-en" not in mpt2 and mpt2["paws"]["mean"] == "60.0000" and not mpt2["paws"]["note"]
    from replicate.tables import table_tasks

    assert table_tasks(cfg, "mpt", "2") == ["paws-en"] and "paws-en" not in table_tasks(cfg, "mpt", "1")


def test_mpt_table6_shows_the_superglue_tasks_its_average_covers_and_the_section_4_3_ablations(tmp_path):
    """MPT Table 6 prints one column, the SuperGLUE average of Table 1's five tasks: the
    regenerated table trains and shows those five (no published number each) and averages
    them. §4.3's ablations (no paper row; reported as SuperGLUE averages) follow MPT's row
    there and nowhere else; Table 7's "w/ 6 Source Tasks" row reads MPT's own cells."""
    from replicate.tables import regenerated_methods, table_groups, table_tasks

    superglue = ["multirc", "boolq", "wic", "wsc", "cb"]
    cfg = _mpt_config(tmp_path, superglue + ["rte", "scitail"], ["full"], methods=None)
    assert table_tasks(cfg, "mpt", "6") == superglue
    section43 = ["mpt-wo-hidden-loss", "mpt-prompt-distance", "mpt-wo-task-sampling", "mpt-only-shared",
                 "mpt-only-task"]
    assert regenerated_methods(cfg, "mpt", "6") == ["mpt-wo-decomposition-wo-distillation", "mpt-wo-decomposition",
                                                    "mpt-wo-distillation", "mpt", *section43]
    for table in ("1", "2", "3", "4"):
        assert not set(section43) & set(regenerated_methods(cfg, "mpt", table)), table
    assert {g.method for g in table_groups(cfg, "mpt", "1")} == {"model-tuning", "pt", "mpt"}
    assert regenerated_methods(cfg, "mpt", "7") == ["mpt-w-6-source-tasks", "mpt-w-12-source-tasks"]
    assert {g.method for g in table_groups(cfg, "mpt", "7")} == {"mpt", "mpt-w-12-source-tasks"}
    for cell in cells(cfg):
        # skewed (60, 61, 64, 69, 76): the average is the mean of the columns (66), not their median (64)
        fake_result(cfg, cell, 60.0 + superglue.index(cell.task) ** 2 if cell.task in superglue else 10.0)
    table = build_table(cfg, "mpt", "6")
    (block,) = table.blocks
    assert block.tasks == superglue and block.averaged == superglue
    assert table.block_avg(block, ("mpt-only-task", "full")) == 66.0
    rows = {(r["method"], r["task"]): r for r in csv_rows(table)}
    assert rows[("mpt", "avg")]["mean"] == "66.0000" and rows[("mpt", "cb")]["mean"] == "76.0000"

