"""Tasks declared in YAML (config task_files): read, validated and registered like a Python
task, in the Snakefile's process and in every job; their bad inputs stop a run in one line;
their test file never reaches a training or dev set; and a run that names only what differs
from config/config.yaml trains one through Snakemake into a table."""

import copy
import csv
import json
import os
import subprocess
import sys

import pytest
import yaml

from conftest import FIXTURES, REPO, TINY_CONFIG
from replicate.config import check_config, read_config_files, split_settings
from replicate.errors import ConfigError, DataError
from replicate.tasks import TASKS

NAME = "ticket-intent"
LABELS = ["request", "complaint"]
# Jobs call `python -m replicate`: the interpreter running the tests comes first, and this checkout's package.
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(REPO),
       "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}


@pytest.fixture(autouse=True)
def own_registry(monkeypatch):
    """Each test registers its YAML tasks in a copy of the registry: none outlives it."""
    monkeypatch.setattr(TASKS, "_entries", dict(TASKS._entries))


def rows(pool: str, n: int):
    """``n`` labelled messages of one pool, both labels alternating; every text names its
    pool, so a test text found in a training set is caught by its words."""
    return [{"message": f"{pool} message {i}: " + ("please send the form" if i % 2 == 0 else "the form never came"),
             "intent": LABELS[i % 2]} for i in range(n)]


def write_csv(path, records, columns=("message", "intent")):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(records)
    return path


def write_task(folder, train=None, test=None, columns=("message", "intent"), **fields):
    """A task file in ``folder`` with its train and test CSV files (24 and 10 rows), its
    fields overridden by ``fields`` (a None value removes the field)."""
    (folder / "data").mkdir(exist_ok=True)
    write_csv(folder / "data" / "train.csv", rows("train", 24) if train is None else train, columns)
    write_csv(folder / "data" / "test.csv", rows("test", 10) if test is None else test, columns)
    decl = {"name": NAME, "kind": "classification", "labels": LABELS, "metric": "acc",
            "licence": "CC0-1.0 (made up by this test)", "description": "support ticket -> request or complaint",
            "template": 'Intent: is "{a}" a request or a complaint? Options: ',
            "data": {"train": "data/train.csv", "test": "data/test.csv",
                     "columns": {"text": "message", "label": "intent"}}}
    decl.update(fields)
    decl = {k: v for k, v in decl.items() if v is not None}
    path = folder / "task.yaml"
    path.write_text(yaml.safe_dump(decl))
    return path


def run_config(tmp_path, task_files):
    cfg = copy.deepcopy(TINY_CONFIG)
    cfg["results_dir"] = str(tmp_path / "results")
    cfg["task_files"] = [str(p) for p in task_files]
    cfg["grid"] = {**cfg["grid"], "methods": ["pt"], "tasks": [NAME]}
    cfg["methods"] = {"pt": cfg["methods"]["pt"]}
    return cfg


def test_a_yaml_task_is_registered_and_loads_like_a_python_one(tmp_path):
    check_config(run_config(tmp_path, [write_task(tmp_path)]))
    task = TASKS.get(NAME)
    assert (task.kind, task.labels, task.metric, task.track, task.suite) == (
        "classification", tuple(LABELS), "acc", "unseen-task", "user")
    assert task.template.fill(task.load_pools("").train[0])[0].startswith('Intent: is "train message 0:')
    pools = task.load_pools("")
    assert [ex.id for ex in pools.train] == [str(i) for i in range(24)]  # row numbers, as the Hub loaders
    assert [ex.id for ex in pools.test] == [str(i) for i in range(10)]
    assert [ex.label for ex in pools.test[:4]] == [0, 1, 0, 1]
    assert all(ex.text_b is None and ex.text.startswith("test ") for ex in pools.test)


@pytest.mark.parametrize("bars_on", [True, False])
def test_loading_a_yaml_task_leaves_the_progress_bars_as_they_were(tmp_path, bars_on):
    """Loading hides datasets' bars while it reads (no bar per small file in the Snakefile's
    output), then gives the caller back the setting it had, on or off."""
    from datasets.utils import logging as datasets_logging

    check_config(run_config(tmp_path, [write_task(tmp_path)]), check_data=False)
    were_on = datasets_logging.is_progress_bar_enabled()
    (datasets_logging.enable_progress_bar if bars_on else datasets_logging.disable_progress_bar)()
    try:
        TASKS.get(NAME).load_pools("")
        assert datasets_logging.is_progress_bar_enabled() is bars_on
    finally:
        (datasets_logging.enable_progress_bar if were_on else datasets_logging.disable_progress_bar)()


def test_label_indices_id_column_and_a_pair_template(tmp_path):
    train = [{"a": f"first {i}", "b": f"second {i}", "y": i % 2, "key": f"t{i}"} for i in range(24)]
    test = [{"a": f"first {i}", "b": f"other {i}", "y": 1 - i % 2, "key": f"s{i}"} for i in range(6)]
    write_task(tmp_path, train, test, ("a", "b", "y", "key"), template='Do "{a}" and "{b}" match? Options: ',
               data={"train": "data/train.csv", "test": "data/test.csv", "label_values": "indices",
                     "columns": {"text": "a", "text_b": "b", "label": "y", "id": "key"}})
    (tmp_path / "notes.txt").write_text("a folder's other files are no task files")
    check_config(run_config(tmp_path, [tmp_path]), check_data=False)  # a folder names every task file in it
    pools = TASKS.get(NAME).source.load("")
    assert [(ex.id, ex.text_b, ex.label) for ex in pools.test[:2]] == [("s0", "other 0", 1), ("s1", "other 1", 0)]


BAD_TASKS = {
    "a registered task's name": (dict(name="bbc-topic"), "name 'bbc-topic' is a registered task's"),
    "an unknown key": (dict(colour="red"), "Additional properties are not allowed ('colour' was unexpected)"),
    "no template": (dict(template=None), "'template' is a required property"),
    "a missing data file": (dict(data={"train": "data/train.csv", "test": "data/gone.csv"}),
                            "data/test: no file"),
    "a template without {a}": (dict(template="Options: "), "template: it must insert the text, {a}"),
    "a template field other than {a} and {b}": (dict(template="{a} from {sender}"), "template: unknown field {sender}"),
    "{b} without a text_b column": (dict(template="{a} and {b}?"), "inserts {b} but data/columns names no text_b"),
    "a text_b column the template leaves out": (dict(data={"train": "data/train.csv", "test": "data/test.csv",
                                                           "columns": {"text": "message", "text_b": "message",
                                                                       "label": "intent"}}),
                                                "template does not insert {b}, the text_b column's text"),
    "the same file as train and test": (dict(data={"train": "data/train.csv", "test": "data/train.csv"}),
                                        "is both train and test data"),
}


@pytest.mark.parametrize("case", BAD_TASKS)
def test_a_bad_task_file_stops_check_config_in_one_line(tmp_path, case):
    fields, message = BAD_TASKS[case]
    with pytest.raises(ConfigError) as err:
        check_config(run_config(tmp_path, [write_task(tmp_path, **fields)]))
    assert message in str(err.value) and "\n" not in str(err.value)


BAD_DATA = {
    "a label not in labels": (dict(train=rows("train", 23) + [{"message": "hello", "intent": "praise"}]),
                              "train data", "row 23: label 'praise' is not one of the task's labels"),
    "an empty pool": (dict(test=[]), "test data", "no rows; the test pool must hold examples"),
    "a missing column": (dict(data={"train": "data/train.csv", "test": "data/test.csv"}), "train data",
                         "no column 'text' (its columns: message, intent)"),
    "a label index out of range": (dict(data={"train": "data/train.csv", "test": "data/test.csv", "label_values":
                                              "indices", "columns": {"text": "message", "label": "intent"}}),
                                   "train data", "label 'request' is not a label index 0..1"),
    "a label index past the last label": (dict(train=[{"message": f"m{i}", "intent": i % 3} for i in range(24)],
                                               data={"train": "data/train.csv", "test": "data/test.csv",
                                                     "label_values": "indices",
                                                     "columns": {"text": "message", "label": "intent"}}),
                                          "train data", "row 2: label 2 is not a label index 0..1"),
    "an empty text": (dict(train=rows("train", 5) + [{"message": "", "intent": "request"}] + rows("more", 18)),
                      "train data", "row 5 has no text (column 'message' is empty)"),
    "a repeated id": (dict(train=[dict(row, ref=f"t{i}") for i, row in enumerate(rows("train", 24))],
                           test=[dict(row, ref="r1") for row in rows("test", 2)], columns=("message", "intent", "ref"),
                           data={"train": "data/train.csv", "test": "data/test.csv",
                                 "columns": {"text": "message", "label": "intent", "id": "ref"}}),
                      "", "test pool: example id 'r1' occurs twice; ids must be unique in a pool (ref column)"),
    "an empty id": (dict(train=[dict(row, ref=f"t{i}" if i != 4 else "") for i, row in enumerate(rows("train", 24))],
                         test=[dict(row, ref=f"s{i}") for i, row in enumerate(rows("test", 10))],
                         columns=("message", "intent", "ref"),
                         data={"train": "data/train.csv", "test": "data/test.csv",
                               "columns": {"text": "message", "label": "intent", "id": "ref"}}),
                    "train data", "row 4 has no id (column 'ref' is empty)"),
}


@pytest.mark.parametrize("case", BAD_DATA)
def test_bad_data_stops_check_config_in_one_line(tmp_path, case):
    """Read at DAG construction (check_config loads a YAML task's local files), not in a job."""
    fields, where, message = BAD_DATA[case]
    with pytest.raises(DataError) as err:
        check_config(run_config(tmp_path, [write_task(tmp_path, **fields)]))
    assert f"task {NAME}: {where}" in str(err.value) and message in str(err.value)
    assert "\n" not in str(err.value)


def test_json_lines_files_and_files_of_two_formats(tmp_path):
    """The files' extensions name their format (.jsonl: JSON Lines); train and test files of
    two formats, without data/format, are refused in one line."""
    write_task(tmp_path, data={"train": "data/train.jsonl", "test": "data/test.jsonl",
                               "columns": {"text": "message", "label": "intent"}})
    for pool, n in (("train", 24), ("test", 10)):
        with open(tmp_path / "data" / f"{pool}.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(row) + "\n" for row in rows(pool, n))
    check_config(run_config(tmp_path, [tmp_path / "task.yaml"]))
    pools = TASKS.get(NAME).load_pools("")
    assert [(ex.text[:16], ex.label) for ex in pools.test[:2]] == [("test message 0: ", 0), ("test message 1: ", 1)]

    write_task(tmp_path, data={"train": "data/train.csv", "test": "data/test.jsonl"})
    mixed = r"data/format: give csv or json \(the files' extensions \['\.csv', '\.jsonl'\] do not say one\)"
    with pytest.raises(ConfigError, match=mixed):
        check_config(run_config(tmp_path, [tmp_path / "task.yaml"]))


def test_a_data_file_gone_after_the_dag_was_built_is_refused(tmp_path):
    check_config(run_config(tmp_path, [write_task(tmp_path)]))
    (tmp_path / "data" / "test.csv").unlink()
    with pytest.raises(DataError, match=f"task {NAME}: test file .*test.csv is missing"):
        TASKS.get(NAME).load_pools("")


def test_a_later_declaration_of_a_yaml_task_replaces_the_earlier(tmp_path):
    """Another config in the same process (a notebook, these tests) sees its own task file."""
    check_config(run_config(tmp_path, [write_task(tmp_path)]))
    check_config(run_config(tmp_path, [write_task(tmp_path, labels=["ask", "moan"], template="Ticket: {a} ")]),
                 check_data=False)  # its data still names the old labels
    assert (TASKS.get(NAME).labels, TASKS.get(NAME).template.text) == (("ask", "moan"), "Ticket: {a} ")


def test_two_files_declaring_one_name_are_refused(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(ConfigError, match=f"task '{NAME}' is declared twice"):
        check_config(run_config(tmp_path, [write_task(tmp_path / "a"), write_task(tmp_path / "b")]))


def replicate_cli(*args):
    return subprocess.run([sys.executable, "-m", "replicate", *args], cwd=REPO, capture_output=True, text=True,
                          env=ENV)


def test_a_job_registers_the_task_from_its_settings_alone(tmp_path):
    """A split job sees --settings, never the config: the declaration it carries registers
    the task in the job's fresh process; a data file changed since is refused in one line."""
    cfg = check_config(run_config(tmp_path, [write_task(tmp_path)]))
    settings = split_settings(cfg, NAME, 8)
    assert settings["user_task"]["name"] == NAME
    assert "user_task" not in split_settings(cfg, "sst-2", 8)  # a Python task's settings, so its hashes, unchanged
    out = tmp_path / "seed8.json"
    done = replicate_cli("split", "--settings", json.dumps(settings), "--seeds", "8", "--data-dir", str(FIXTURES),
                         "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert len(json.loads(out.read_text())["train"]) == 8

    write_csv(tmp_path / "data" / "test.csv", rows("test", 11))
    again = replicate_cli("split", "--settings", json.dumps(settings), "--seeds", "8", "--data-dir", str(FIXTURES),
                          "--out", str(out))
    assert again.returncode == 2
    assert again.stderr.strip().splitlines()[-1].startswith(f"replicate: task {NAME}: test file ")
    assert "changed since the run's DAG was built" in again.stderr


def test_a_task_set_job_registers_its_yaml_tasks_from_its_settings_alone(tmp_path):
    """A multi-task job (ComPT's train-set) carries the declaration of each YAML task of its
    set, by name, and none of a Python task; its --settings register them in a process that
    never read the task file (here: the task taken out of the registry first)."""
    from replicate.cli import _json_object
    from replicate.config import TaskSetGroup, task_set_settings

    cfg = check_config(run_config(tmp_path, [write_task(tmp_path)]))
    declared = TASKS.get(NAME).extra["declaration"]
    settings = task_set_settings(cfg, TaskSetGroup("compt-msum", "tiny-bert", 8, (NAME, "sst-2")))
    assert settings["user_tasks"] == {NAME: declared}
    del TASKS._entries[NAME]
    _json_object("--settings", json.dumps(settings), "train-set")
    assert TASKS.get(NAME).extra["declaration"] == declared
    assert [ex.id for ex in TASKS.get(NAME).load_pools("").test] == [str(i) for i in range(10)]


def test_a_by_hand_job_stops_on_a_bad_label_in_one_line(tmp_path):
    config = tmp_path / "run.yaml"
    write_task(tmp_path, test=rows("test", 9) + [{"message": "hi", "intent": "praise"}])
    config.write_text(yaml.safe_dump(run_config(tmp_path, [tmp_path / "task.yaml"])))
    done = replicate_cli("split", "--config", str(config), "--task", NAME, "--shot", "8", "--seeds", "8")
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"replicate: task {NAME}: test data") and "'praise'" in lines[0]


def test_nothing_of_the_test_file_reaches_a_training_or_dev_set(tmp_path):
    """Train and test files share ids (row numbers) and words; every seed's train and dev
    sets are rows of the train file, and its test set is the test file's rows."""
    from replicate.jobs import make_splits
    from replicate.splits import resolve

    cfg = check_config(run_config(tmp_path, [write_task(tmp_path)]))
    task = TASKS.get(NAME)
    pools = task.load_pools("")
    train_texts = {ex.text for ex in pools.train}
    test_texts = {ex.text for ex in pools.test}
    assert not train_texts & test_texts and {ex.id for ex in pools.train} & {ex.id for ex in pools.test}
    seeds = [8, 13, 21]
    outs = [str(tmp_path / f"s{seed}.json") for seed in seeds]
    for manifest in make_splits(split_settings(cfg, NAME, 8), seeds, "", outs):
        parts = resolve(manifest, pools)
        assert len(parts["train"]) == len(parts["dev"]) == 8
        assert {ex.text for ex in parts["train"] + parts["dev"]} <= train_texts
        assert {ex.text for ex in parts["test"]} == test_texts


def overlay(tmp_path, task_file):
    """A run that names only what differs from config/config.yaml: its name and folder, the
    backbone, grid, PT's budget, and the task file."""
    return {"run": "yaml-task", "results_dir": str(tmp_path / "results"), "data_dir": str(FIXTURES),
            "task_files": [str(task_file)],
            "grid": {"backbone": "tiny-bert", "shots": [8], "seeds": [8, 13], "methods": ["pt"], "tasks": [NAME]},
            "methods": {"pt": {"epochs": 2, "max_length": 48, "prompt_length": 4}}}


def test_an_overlay_merged_over_the_default_keeps_the_defaults_other_keys(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(overlay(tmp_path, write_task(tmp_path))))
    base = read_config_files([str(REPO / "config" / "config.yaml")])
    cfg = check_config(read_config_files([str(REPO / "config" / "config.yaml"), str(path)]))
    assert cfg["grid"]["tasks"] == [NAME] and cfg["methods"]["pt"]["epochs"] == 2
    assert all(cfg["protocol"][k] == v for k, v in base["protocol"].items()) and cfg["protocol"]["test_cap"] == 120
    assert cfg["methods"]["pt"]["batch_size"] == base["methods"]["pt"]["batch_size"] == 8  # a field it leaves


def snakemake(*args):
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=REPO, capture_output=True, text=True,
                          env=ENV, timeout=600)


def test_a_lone_overlay_does_not_inherit_the_default(tmp_path):
    """--configfile mine.yaml alone is the whole run: without the keys only config/config.yaml
    gives, the DAG stops in one line instead of merging the default in."""
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(overlay(tmp_path, write_task(tmp_path))))
    done = snakemake("-n", "--cores", "1", "mp2_table3", "--configfile", str(path))
    assert done.returncode != 0
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("replicate:")]
    assert lines == ["replicate: config (top level): 'protocol' is a required property"]


@pytest.mark.slow
def test_a_yaml_task_trains_through_snakemake_into_a_table(tmp_path):
    """The YAML task and its CSV files, no change to replicate/: PT on it through Snakemake
    over config/config.yaml, and its column in MP2 Table 3's UNSEEN TASK block."""
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(overlay(tmp_path, write_task(tmp_path))))
    configs = ["--configfile", str(REPO / "config" / "config.yaml"), str(path)]
    done = snakemake("--cores", "2", "mp2_table3", *configs)
    assert done.returncode == 0, done.stderr[-3000:]
    tables = tmp_path / "results" / "tables"
    table = list(csv.DictReader(open(tables / "mp2_table3.csv", encoding="utf-8")))
    mine = [r for r in table if r["task"] == NAME and r["method"] == "pt"]
    assert len(mine) == 1 and mine[0]["status"] == "ok" and mine[0]["n"] == "2"
    assert mine[0]["block"].startswith("UNSEEN TASK /") and mine[0]["metric"] == "acc"
    assert f"| {NAME} (acc) |" in (tables / "mp2_table3.md").read_text()
    cell = json.loads((tmp_path / "results" / f"cells/tiny-bert/{NAME}/shot8/pt/seed8.json").read_text())
    assert cell["status"] == "ok" and cell["suite"] == "user"

    # a changed data file is a changed task: its split and cells are made again
    write_csv(tmp_path / "data" / "test.csv", rows("test", 12))
    again = snakemake("-n", "--cores", "2", "mp2_table3", *configs)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "split" in again.stdout and "train" in again.stdout



def test_the_docs_example_run_checks(tmp_path):
    """docs/extending.md's overlay (mine.yaml) over config/config.yaml, with the example task
    file config/tasks/example.yaml: valid, and its pools load."""
    import re

    block = re.search(r"# mine.yaml\n(.*?)```", (REPO / "docs" / "extending.md").read_text(), re.S).group(1)
    mine = yaml.safe_load(block)
    mine["task_files"] = [str(REPO / p) for p in mine["task_files"]]  # relative to the repository, where it runs
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(mine))
    cfg = check_config(read_config_files([str(REPO / "config" / "config.yaml"), str(tmp_path / "mine.yaml")]))
    assert cfg["grid"]["tasks"] == ["message-intent"] and cfg["protocol"]["test_cap"] == 120
    pools = TASKS.get("message-intent").load_pools("")
    assert (len(pools.train), len(pools.test)) == (24, 8)
