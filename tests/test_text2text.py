"""ATTEMPT's suite (replicate/tasks/text2text.py): every task loads from its Hub-schema
fixture, and its text-to-text formats give ATTEMPT's and ComPT's exact strings."""

import numpy as np
import pytest
from conftest import t2t_files

from replicate.tasks import TASKS, resolve_task
from replicate.tasks.base import Example, TextFormat
from replicate.tasks.text2text import ROWS, TEXT2TEXT_TASKS

NAMES = [t.name for t in TEXT2TEXT_TASKS]


def load(name):
    return resolve_task(name, t2t_files(name)).load_pools("unused")


def test_table_names_are_registered_and_paws_clash_resolved():
    published = {"mnli", "qqp", "qnli", "sst-2", "sts-b", "mrpc", "rte", "cola", "multirc", "boolq", "wic", "wsc", "cb",
                 "naturalquestions", "hotpotqa", "searchqa", "newsqa", "winogrande", "yelp-polarity", "scitail",
                 "squad", "record", "imdb", "multinli"}
    assert published <= set(NAMES)
    assert TASKS.get("paws").language == "zh"  # MP2's upstream PAWS-X keeps its name
    assert TASKS.get("paws-en").paper_name == "paws"


@pytest.mark.parametrize("name", NAMES)
def test_every_task_loads_from_its_fixture(name):
    task = TASKS.get(name)
    pools = load(name)
    assert pools.train and pools.test
    assert (pools.dev is not None) == (task.source.splits[1] is not None)
    for pool in (pools.train, pools.test, pools.dev or []):
        for ex in pool:
            if task.kind == "classification":
                assert 0 <= ex.label < task.num_labels
            elif task.kind == "regression":
                assert 0 <= ex.value <= 5
            else:
                assert ex.answers
            fmt = task.formats["attempt"]
            assert fmt.source(ex) and fmt.target(task.kind, ex) is not None
    if name != "imdb":  # ComPT's IMDB dev split is its train split (C:784-786)
        assert {ex.text for ex in pools.train}.isdisjoint(ex.text for ex in pools.test)


def test_glue_test_split_labels_are_minus_one_and_dropped(tmp_path):
    import json
    rows = [json.loads(line) for line in open(t2t_files("rte")["rte"]["train"].replace("_train", "_test"))]
    assert {r["label"] for r in rows} == {-1}
    task = TASKS.get("rte")
    pools = resolve_task("rte", {"rte": {"train": t2t_files("rte")["rte"]["train"],
                                         "validation": t2t_files("rte")["rte"]["train"].replace("_train", "_test")}}
                         ).source.load("unused")
    assert pools.test == [] and task.kind == "classification"


def test_ids_labels_and_nested_schemas():
    mnli = load("mnli")
    assert [ex.id for ex in mnli.train[:3]] == ["0", "1", "2"] and [ex.label for ex in mnli.train[:3]] == [0, 1, 2]
    assert mnli.dev[0].text.startswith("The validation_mismatched")
    assert mnli.test[0].text.startswith("The validation_matched")
    mrc = load("multirc")
    assert mrc.train[0].id == "0-0-0" and mrc.train[0].field("group") == "0-0"
    nq = load("naturalquestions")
    assert all(ex.id.startswith("natu-") for ex in nq.train + nq.test) and nq.train[0].answers
    ex = nq.train[0]
    assert ex.text[ex.answer_start:].startswith(ex.answers[0])
    assert load("scitail").train[1].label == 1  # "neutral"
    assert [e.label for e in load("winogrande").train[:2]] == [0, 1]  # answer "1", "2"
    rec = load("record").train[0]
    assert rec.answers == ("Alice",) and rec.field("entities") == "Alice, Bob, CarolTrain"


def ex(**kw):
    return Example(id="0", **kw)


def test_attempt_input_strings():
    t = TASKS.get
    pair = ex(text="P .", text_b="H ?", label=1)
    assert t("mnli").formats["attempt"].source(pair) == "mnli premise: P . hypothesis: H ?"          # A:399-400
    assert t("rte").formats["attempt"].source(pair) == "rte sentence1: P . sentence2: H ?"            # A:476-477
    assert t("qqp").formats["attempt"].source(pair) == "qqp question1: P . question2: H ?"            # A:380-381
    assert t("cb").formats["attempt"].source(pair) == "superglue-cb premise: P . hypothesis: H ?"     # A:552-553
    assert t("boolq").formats["attempt"].source(ex(text="pass", text_b="q", label=0)) == \
        "superglue-boolq question: q passage: pass"                                                   # A:514-515
    assert t("sst-2").formats["attempt"].source(ex(text="good", label=1)) == "sst2 sentence: good"
    assert t("mnli").formats["attempt"].target("classification", pair) == "1"
    wino = ex(text="A _ b", label=0, fields=(("option1", "x"), ("option2", "y")))
    assert t("winogrande").formats["attempt"].source(wino) == "winogrande sentence: A _ b option0: x option1: x"
    wic = ex(text="s1", text_b="s2", label=0, fields=(("word", "bank"),))
    assert t("wic").formats["attempt"].source(wic) == "superglue-wic sentence1: s1 sentence2: s2 word: bank"


def test_attempt_strings_of_loaded_rows():
    wsc = load("wsc").train[0]
    assert TASKS.get("wsc").formats["attempt"].source(wsc) == (
        "superglue-wsc.fixed text: * Mark * told Pete many lies about himself , which Pete included in # his # "
        "train book 0 .")
    mrc = load("multirc").train[0]
    src = TASKS.get("multirc").formats["attempt"].source(mrc)
    assert src.startswith("superglue-multirc question: What is train 0.0? answer: answer 0 paragraph: Sent 1: The train")
    assert "<b>" not in src and "<br>" not in src
    rec = load("record").train[0]
    assert TASKS.get("record").formats["attempt"].source(rec) == (
        "superglue-record record query: @placeholder met Bob in train town 0. entities: Alice, Bob, CarolTrain "
        "passage: Alice met Bob in train town 0. CarolTrain came too")
    sq = load("squad").train[0]
    fmt = TASKS.get("squad").formats["attempt"]
    # pad_punctuation leaves a space after a final mark, so ATTEMPT's joined source has a
    # double space and a trailing one (utils.py:195-197, tasks.py:155-158)
    assert fmt.source(sq) == "squad question: What fell in train year 0 ?  context: In train year 0 the " + \
        sq.answers[0] + " fell . "


def test_compt_input_strings_and_word_verbalizers():
    t = TASKS.get
    pair = ex(text="P", text_b="H", label=0)
    assert t("mnli").formats["compt"].source(pair) == "src-mnli: sentence1: P sentence2: H"           # C:1222-1223
    assert t("mnli").formats["compt"].targets == ("entailment", "neutral", "contradiction")         # C:1211
    assert t("multinli").formats["compt"].source(pair) == "src-multinli: premise: P hypothesis: H"   # C:1309-1310
    assert t("qqp").formats["compt"].targets == ("not_duplicate", "duplicate")                      # C:1179
    assert t("mrpc").formats["compt"].targets == ("not_equivalent", "equivalent")                   # C:744
    assert t("cola").formats["compt"].targets == ("unacceptable", "acceptable")                     # C:768
    assert t("sst-2").formats["compt"].source(ex(text="x", label=0)) == "src-sst2: sentence1: x"     # C:844
    assert t("paws-en").formats["compt"].targets == ("not_equivalent", "equivalent")                # C:1252
    assert t("scitail").formats["compt"].targets == ("0", "1")  # no labels_map: digits (C:544-557)
    long_q = ex(text="q" * 150, text_b="s" * 400, label=0)
    assert t("qnli").formats["compt"].source(long_q) == "src-qnli: sentence1: " + "q" * 100 + " sentence2: " + "s" * 350
    assert set(t("mrpc").formats) == {"attempt", "compt"} and set(t("boolq").formats) == {"attempt"}


@pytest.mark.parametrize("value", [0.0, 0.05, 0.15, 0.25, 1.35, 2.25, 2.5, 3.799999952316284, 4.75, 4.85, 5.0]
                         + [i / 40 for i in range(201)])
def test_stsb_target_is_attempts_numpy_rounding(value):
    """ATTEMPT: str(np.round((label * 5) / 5, decimals=1)) (data/utils.py:17, tasks.py:362)."""
    fmt = TASKS.get("sts-b").formats["attempt"]
    assert fmt.target("regression", ex(text="a", value=value)) == str(np.round((value * 5) / 5, decimals=1))


def test_stsb_attempt_rounding_is_not_step_rounding():
    fmt = TASKS.get("sts-b").formats["attempt"]
    assert fmt.target("regression", ex(text="a", value=3.3)) == "3.3"  # not 3.4: ATTEMPT does not snap to 0.2
    assert TextFormat(input="{a}", step=0.2).target("regression", ex(text="a", value=3.3)) == "3.2"


def test_every_row_cites_attempt():
    for row in ROWS:
        assert "A:" in row.attempt_id or "C:" in row.attempt_id
