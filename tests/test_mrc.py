"""The MRC encoding follows MPMP's layout and points at the right spans."""

import pytest

from replicate.backbones import BACKBONES
from replicate.mrc import PROMPT_SLOT_FIRST_ID, MRCEncoder, TooLong
from replicate.tasks import TASKS, resolve_task
from replicate.tasks.base import Example

from conftest import paper_files


@pytest.fixture(scope="module")
def tokenizer():
    return BACKBONES.get("tiny-bert").load()[1]


@pytest.fixture(scope="module")
def cpt_tokenizer(tiny_cpt_dir):
    return BACKBONES.get("tiny-cpt").load_tokenizer(str(tiny_cpt_dir))


def test_classification_layout_is_mpmps(cpt_tokenizer):
    """[CLS] P_1..P_L template-with-text option，option，... : no [SEP], every option
    followed by "，", prompt slots 1000.., token types all ones (CPT)."""
    task = resolve_task("chnsent")
    enc = MRCEncoder(cpt_tokenizer, task, max_length=512, prompt_length=3, use_cls=True, token_type=1)
    e = enc.encode(Example(id="0", text="很好", label=1))
    tokens = cpt_tokenizer.convert_ids_to_tokens(e.input_ids)
    assert e.input_ids[:4] == [cpt_tokenizer.cls_token_id, PROMPT_SLOT_FIRST_ID, PROMPT_SLOT_FIRST_ID + 1,
                               PROMPT_SLOT_FIRST_ID + 2]
    assert "".join(tokens[4:]) == '情感分析："很好"的情感是？选项：负面，正面，'
    assert cpt_tokenizer.sep_token_id not in e.input_ids and e.token_type_ids == [1] * len(e.input_ids)
    assert ["".join(tokens[a:b + 1]) for a, b in zip(e.option_starts, e.option_ends)] == ["负面", "正面"]
    assert e.label == 1


def test_multiple_choice_ends_with_sep_in_place_of_the_last_comma(cpt_tokenizer):
    task = resolve_task("c3")
    enc = MRCEncoder(cpt_tokenizer, task, 512, 2, True, 1)
    e = enc.encode(Example(id="0-0", text="男：你好。", text_b="女的要买什么？", options=("苹果", "香蕉"), label=1))
    tokens = cpt_tokenizer.convert_ids_to_tokens(e.input_ids)
    assert "".join(tokens[3:]) == '阅读选择：文档"男：你好。"，问题"女的要买什么？",选项：苹果，香蕉[SEP]'
    assert ["".join(tokens[a:b + 1]) for a, b in zip(e.option_starts, e.option_ends)] == ["苹果", "香蕉"]


def test_extractive_layout_and_answer_span(cpt_tokenizer):
    task = resolve_task("cmrc-2018", paper_files("cmrc-2018"))
    ex = next(e for e in task.load_pools("").train if e.answers[0].endswith("年"))
    enc = MRCEncoder(cpt_tokenizer, task, 512, 2, True, 1)
    e = enc.encode(ex)
    tokens = cpt_tokenizer.convert_ids_to_tokens(e.input_ids)
    joined = "".join(t.removeprefix("##") for t in tokens[3:])
    assert joined.lower() == f'抽取式问答：文本"{ex.text}问题"{ex.text_b}[SEP]'.lower()
    assert enc.decode_span(e, *e.answer_span) == ex.answers[0]
    assert enc.decode_span(e, 0, 2) == ""  # [CLS] and prompt slots decode to nothing


def test_extractive_examples_are_never_truncated(cpt_tokenizer):
    task = resolve_task("cmrc-2018")
    enc = MRCEncoder(cpt_tokenizer, task, 40, 2, True, 1)
    with pytest.raises(TooLong):
        enc.encode(Example(id="x", text="很长的文档。" * 20, text_b="问题？", answers=("文档",), answer_start=2))


def test_right_truncation_cuts_the_filled_template_as_mpmp(cpt_tokenizer):
    task = resolve_task("chnsent")  # truncate="right": MPMP's encode(template)[:max_input_len]
    enc = MRCEncoder(cpt_tokenizer, task, 20, 2, True, 1)
    e = enc.encode(Example(id="0", text="好" * 40, label=0))
    tokens = cpt_tokenizer.convert_ids_to_tokens(e.input_ids)
    assert len(e.input_ids) == 20 and "".join(tokens[-6:]) == "负面，正面，"
    assert "".join(tokens[3:-6]) == '情感分析："' + "好" * 5  # 20 - [CLS] - 2 slots - 6 option tokens


def test_head_and_tail_truncation_keep_the_query(tokenizer):
    head = MRCEncoder(tokenizer, TASKS.get("sentence-polarity"), 40, 2, True)
    text = head.tok.decode(head.encode(Example(id="x", text="opening " * 100 + "superb", label=1)).input_ids)
    assert "opening" in text and "superb" not in text and "what is the sentiment of" in text and "positive" in text
    tail = MRCEncoder(tokenizer, TASKS.get("review-polarity"), 40, 2, True)  # the verdict is at the end
    text = tail.tok.decode(tail.encode(Example(id="x", text="opening " * 100 + "the ending was superb",
                                               label=1)).input_ids)
    assert "superb" in text and "what is the sentiment of" in text


def test_options_that_leave_no_room_are_an_error(tokenizer):
    enc = MRCEncoder(tokenizer, TASKS.get("bbc-topic"), max_length=12, prompt_length=4, use_cls=True)
    with pytest.raises(ValueError, match="leave no room"):
        enc.encode(Example(id="x", text="a b c", label=0))
