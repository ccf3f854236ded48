"""MPMP's released datasets, exported from its loading scripts, reach the harness through
``paper_data_files``: the renames docs/methods/mp2.md ("MPMP's datasets and
paper_data_files") gives for the UNSEEN DATA tasks (and COTE-BD) keep every row's label word
and answer as MPMP reads them (``Deep/dataloader.py``)."""

import json

import pytest

from replicate.tasks import resolve_task

# One row per task in MPMP's schema (the fields its templates read), with the label word or
# answer MPMP would train on: labellist[int(label)] (:143), options[label] (:178-182), or
# the context's answer_text at answer_start (:222-225).
MPMP_ROWS = {
    "amazon": ({"text": "质量很好", "label": 3}, "较好"),
    "thucnews": ({"text": "球队赢了", "label": 0}, "体育"),
    "bq": ({"text1": "怎么还款", "text2": "如何还钱", "label": 1}, "相似"),
    "cmnli": ({"text1": "他在跑步", "text2": "他坐着", "label": 0}, "矛盾"),
    "cmrc-2018": ({"context": "北京是中国的首都。", "question": "首都是哪里", "answer_start": 0,
                   "answer_text": "北京"}, "北京"),
    "ccpm": ({"document": "明月照松间", "options": ["一", "二", "三", "四"], "label": 2}, "三"),
    "cote-mfw": ({"context": "这家火锅店很好吃", "question": "评价对象", "answer_start": 2, "answer_text": "火锅店"},
                 "火锅店"),
    "cote-bd": ({"context": "故宫很壮观", "question": "评价对象", "answer_start": 0, "answer_text": "故宫"}, "故宫"),
}
CMNLI_NAMES = ("contradiction", "neutral", "entailment")  # MPMP's 矛盾/中立/相似 (:280) as CLUE names


def renamed(task: str, row: dict) -> dict:
    """docs/methods/mp2.md's table: an MPMP row in the harness's schema for ``task``."""
    if task in ("amazon", "thucnews"):
        return dict(row)
    if task == "bq":
        return {"sentence1": row["text1"], "sentence2": row["text2"], "label": row["label"]}
    if task == "cmnli":
        return {"sentence1": row["text1"], "sentence2": row["text2"], "label": CMNLI_NAMES[row["label"]]}
    if task == "cmrc-2018":
        return {"context": row["context"], "question": row["question"],
                "answers": {"text": [row["answer_text"]], "answer_start": [row["answer_start"]]}}
    if task == "ccpm":
        return {"translation": row["document"], "choices": row["options"], "answer": row["label"]}
    if task in ("cote-mfw", "cote-bd"):
        return {"text": row["context"], "keyword": row["answer_text"]}
    raise KeyError(task)


@pytest.mark.parametrize("task", sorted(MPMP_ROWS))
def test_mpmp_rows_renamed_as_the_mp2_card_says_keep_mpmps_label_or_answer(task, tmp_path):
    row, truth = MPMP_ROWS[task]
    files = {}
    for split in ("train", "test"):
        path = tmp_path / f"{split}.jsonl"
        path.write_text(json.dumps(renamed(task, row), ensure_ascii=False) + "\n", encoding="utf-8")
        files[split] = str(path)
    spec = resolve_task(task, {task: files})
    pools = spec.load_pools(str(tmp_path))
    [ex] = pools.train
    if spec.kind == "extractive":
        assert ex.answers == (truth,) and ex.text[ex.answer_start:ex.answer_start + len(truth)] == truth
    else:
        assert spec.options_of(ex)[ex.label] == truth
    assert len(pools.test) == 1
