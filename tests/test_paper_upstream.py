"""MP2's 38 upstream tasks (Appendix D.1, Table 8) as MPMP's Dataset_list names them.

Rows below are in MPMP's schemas (the field names its ``Deep/dataloader.py`` reads); no
network: every upstream source is a local-files-only HubSource.
"""

import pytest

from replicate.errors import DataError
from replicate.tasks.base import FAMILIES, Example
from replicate.tasks.paper import PAPER_TASKS
from replicate.tasks.paper_upstream import (
    FAMILY_OF_PAPER_UPSTREAM,
    MP2_UPSTREAM,
    MPMP_DEEP_OMITS,
    PAPER_UPSTREAM_TASKS,
    UPSTREAM_IN_PAPER_TASKS,
    upstream_family,
    upstream_specs,
)

UNSEEN_TASK = ("chnsent", "tnews", "ocnli", "lcqmc", "drcd", "c3", "cote-bd")
UP = {s.name: s for s in PAPER_UPSTREAM_TASKS}
PAPER = {s.name: s for s in PAPER_TASKS}


def test_38_unique_names_all_resolve():
    assert len(MP2_UPSTREAM) == 38
    assert len(set(MP2_UPSTREAM)) == 38
    assert len(PAPER_UPSTREAM_TASKS) == 31 and len(UP) == 31
    assert set(UPSTREAM_IN_PAPER_TASKS) == {"amazon", "thucnews", "bq", "cmnli", "cmrc-2018", "ccpm", "cote-mfw"}
    for name in UPSTREAM_IN_PAPER_TASKS:
        assert name not in UP  # referred to by name, not redefined
        assert PAPER[name].track == "unseen-data"
    assert set(UP) | set(UPSTREAM_IN_PAPER_TASKS) == set(MP2_UPSTREAM)
    specs = upstream_specs()
    assert [s.name for s in specs] == list(MP2_UPSTREAM)
    assert set(MPMP_DEEP_OMITS) <= set(MP2_UPSTREAM)


def test_router_order_is_mpmps_dataset_list():
    # Shallow/dataloader.py:923-969 (Deep's list without CSL); spot checks of the index order
    assert MP2_UPSTREAM[:5] == ("afqmc", "paws", "cmnli", "csl", "thucnews")
    assert MP2_UPSTREAM.index("cmrc-2018") == 12 and MP2_UPSTREAM.index("ccpm") == 24
    assert MP2_UPSTREAM[-1] == "weibo-sentiment"


def test_no_unseen_task_leaks_into_pretraining():
    assert not set(MP2_UPSTREAM) & set(UNSEEN_TASK)
    assert all(PAPER[n].track == "unseen-task" for n in UNSEEN_TASK)


@pytest.mark.parametrize("name", sorted(UP))
def test_upstream_spec_shape(name):
    spec = UP[name]
    assert spec.track == "upstream" and spec.suite == "paper"
    assert spec.family in FAMILIES and spec.family
    assert "{a}" in spec.template.text
    if spec.kind == "classification":
        assert spec.num_labels >= 2 and len(set(spec.labels)) == spec.num_labels
        assert spec.metric == "acc"
    if spec.kind == "extractive":
        assert spec.metric == "f1" and spec.labels == ()
    src = spec.source
    assert src.path is None and src.verified_hub_id is False
    assert "not on the Hub: needs paper_data_files" in src.provenance
    with pytest.raises(DataError):
        src.check("")  # nothing to load without local files
    assert spec.extra["mpmp_script"].endswith(".py")


def test_families_and_label_counts():
    assert len({s.family for s in PAPER_UPSTREAM_TASKS}) >= 4
    assert {upstream_family(s) for s in upstream_specs()} - {""} == set(FAMILIES) - {""}
    assert set(FAMILY_OF_PAPER_UPSTREAM) == set(UPSTREAM_IN_PAPER_TASKS)
    # MPMP's label counts (Table 8 agrees except Toutiao-TC 14 and Weibo-sentiment 5)
    counts = {"chip-ctc": 44, "finre": 44, "fudan-tc": 20, "kuake-qic": 11, "sanwen": 10, "toutiao-tc": 15,
              "xnli": 3, "kuake-qqr": 3, "dianping": 5, "dmsc": 5, "weibo-sentiment": 2, "cluewsc": 2}
    for name, n in counts.items():
        assert UP[name].num_labels == n, name


def test_single_text_row_converts_in_mpmps_option_order():
    spec = UP["dianping"]  # MPMP :853-864, labels 非常差..非常好, label indexes them directly
    ex = spec.source.convert(0, {"text": "菜很好吃", "label": 3})
    assert ex == Example(id="0", text="菜很好吃", label=3)
    assert spec.labels[ex.label] == "较好"
    assert spec.source.convert(1, {"text": "一般", "label": "非常差"}).label == 0  # a file storing the word
    filled, _ = spec.template.fill(ex)
    assert filled == '打分："菜很好吃"的评价是？选项：'


def test_pair_row_converts():
    spec = UP["afqmc"]  # MPMP :235-246: text1, text2, label over ["矛盾", "相似"]
    row = {"text1": "花呗怎么还款", "text2": "花呗如何还钱", "label": 1}
    ex = spec.source.convert(5, row)
    assert (ex.text, ex.text_b, ex.label) == ("花呗怎么还款", "花呗如何还钱", 1)
    assert spec.labels[ex.label] == "相似"
    assert spec.template.fill(ex)[0] == f'意思判别："{row["text1"]}"与"{row["text2"]}"的意思是？选项：'
    zhidao = UP["law-zhidao"]  # :785-796: question, reply over ["不符", "符合"]
    ex = zhidao.source.convert(0, {"question": "合同无效吗", "reply": "要看情况", "label": 0})
    assert (ex.text, ex.text_b, zhidao.labels[ex.label]) == ("合同无效吗", "要看情况", "不符")


def test_extractive_row_converts():
    spec = UP["dureader-robust"]  # MPMP :216-232: context, question, answer_start, answer_text
    row = {"id": "q1", "context": "北京是中国的首都。", "question": "中国的首都是哪里", "answer_start": 0,
           "answer_text": "北京"}
    ex = spec.source.convert(0, row)
    assert ex == Example(id="q1", text="北京是中国的首都。", text_b="中国的首都是哪里", answers=("北京",), answer_start=0)
    filled, fields = spec.template.fill(ex)
    assert filled == '抽取式问答：文本"北京是中国的首都。问题"中国的首都是哪里'  # MPMP :203, :226-227
    a0 = fields["a"][0] + ex.answer_start
    assert filled[a0:a0 + 2] == "北京"
    checklist = UP["dureader-checklist"]
    assert checklist.template.text.startswith("抽取式问答（可能没有答案）")  # MPMP :201
    assert checklist.source.convert(0, dict(row, is_impossible=True)) is None
    assert checklist.source.convert(0, dict(row, is_impossible=False)).answers == ("北京",)


def test_three_field_templates_fill_as_mpmps_fstrings():
    row = {"subject": "甲公司", "object": "乙公司", "text": "甲公司收购了乙公司", "label": 24}
    finre = UP["finre"]
    ex = finre.source.convert(0, row)
    assert finre.labels[ex.label] == "收购"
    mpmp = f'关系判别：主语"{row["subject"]}"和宾语"{row["object"]}"在句子"{row["text"]}"中的关系是？选项：'  # :405
    assert finre.template.fill(ex)[0] == mpmp
    sanwen = UP["sanwen"]
    ex = sanwen.source.convert(0, dict(row, label=4))
    assert sanwen.template.fill(ex)[0] == \
        f'关系判别：主体"{row["subject"]}"和客体"{row["object"]}"在句子"{row["text"]}"中的关系是？选项：'  # :652
    wsc_row = {"text": "小明把书给了小红，她很高兴", "pronoun": "她", "quote": "小红", "label": 1}
    wsc = UP["cluewsc"]
    ex = wsc.source.convert(0, wsc_row)
    assert wsc.labels[ex.label] == "相同"
    assert wsc.template.fill(ex)[0] == \
        f'指代判别:在句子"{wsc_row["text"]}"中，代词"{wsc_row["pronoun"]}"指代的和"{wsc_row["quote"]}"一致吗？选项：'


def test_multiple_choice_row_converts():
    spec = UP["dogwhistle"]  # MPMP :420-429 and :166-185: question, options, label
    ex = spec.source.convert(0, {"question": "大佬", "options": ["高手", "菜鸟", "路人", "老板"], "label": 0})
    assert ex.options == ("高手", "菜鸟", "路人", "老板") and ex.label == 0
    assert spec.options_of(ex)[ex.label] == "高手"
    assert spec.template.fill(ex)[0] == '近义词选择：与词语"大佬"最相近的词是？选项：'


def test_local_files_in_mpmps_schema_load(tmp_path):
    import json

    rows = [{"text1": "花呗怎么还款", "text2": "花呗如何还钱", "label": 1},
            {"text1": "借呗额度", "text2": "花呗账单", "label": 0}]
    files = {}
    for split in ("train", "test"):
        path = tmp_path / f"afqmc_{split}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        files[split] = str(path)
    pools = UP["afqmc"].source.with_files(files).load(str(tmp_path))
    assert [(ex.text, ex.text_b, ex.label) for ex in pools.train] == [(r["text1"], r["text2"], r["label"]) for r in rows]
    assert len(pools.test) == 2
