"""The MRC encoding points at the right spans and never truncates the query."""

import pytest

from replicate.backbones import BACKBONES
from replicate.mrc import MRCEncoder
from replicate.tasks import TASKS, resolve_task
from replicate.tasks.base import Example

from conftest import FIXTURES


@pytest.fixture(scope="module")
def tokenizer():
    return BACKBONES.get("tiny-bert").load()[1]


def test_option_spans_decode_to_the_options(tokenizer):
    task = TASKS.get("bbc-topic")
    enc = MRCEncoder(tokenizer, task, max_length=64, prompt_length=5, use_cls=True)
    ex = Example(id="x", text="word " * 200, label=3)
    e = enc.encode(ex)
    assert len(e.input_ids) == 64
    assert e.input_ids[0] == tokenizer.cls_token_id and e.input_ids[1:6] == [tokenizer.pad_token_id] * 5
    spans = [tokenizer.decode(e.input_ids[a:b + 1]) for a, b in zip(e.option_starts, e.option_ends)]
    assert spans == list(task.labels)
    assert e.label == 3


def test_tail_truncation_keeps_the_end(tokenizer):
    task = TASKS.get("review-polarity")  # truncate="tail": the verdict is at the end
    enc = MRCEncoder(tokenizer, task, max_length=40, prompt_length=2, use_cls=True)
    e = enc.encode(Example(id="x", text="opening " * 100 + "the ending was superb", label=1))
    assert "superb" in tokenizer.decode(e.input_ids)
    assert "opening" in tokenizer.decode(e.input_ids)  # what fits of the rest
    head = MRCEncoder(tokenizer, TASKS.get("sentence-polarity"), 40, 2, True)
    assert "superb" not in tokenizer.decode(head.encode(Example(id="x", text="opening " * 100 + "superb", label=1)).input_ids)


def test_extractive_answer_span(tokenizer):
    files = {"cmrc-2018": {"train": str(FIXTURES / "clue" / "cmrc2018_train.jsonl"),
                           "test": str(FIXTURES / "clue" / "cmrc2018_test.jsonl")}}
    task = resolve_task("cmrc-2018", files)
    ex = task.load_pools("").train[0]
    enc = MRCEncoder(tokenizer, task, max_length=64, prompt_length=3, use_cls=True)
    e = enc.encode(ex)
    assert enc.decode_span(e, *e.answer_span) == "北京"
    assert e.context_range[0] == 4


def test_query_too_long_is_an_error(tokenizer):
    enc = MRCEncoder(tokenizer, TASKS.get("bbc-topic"), max_length=12, prompt_length=4, use_cls=True)
    with pytest.raises(ValueError, match="leaves no room"):
        enc.encode(Example(id="x", text="a b c", label=0))
