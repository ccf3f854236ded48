"""Cloze templates and verbalizers: how BBT and BBTv2 pose a task to a masked language model.

Black-Box-Tuning's CPT path (txsun1997/Black-Box-Tuning at e4013f7) writes each example as a
sentence with one [MASK] after 50 prompt placeholders (ids 1000-1049) and reads the answer
as the label word the masked-LM head scores highest there
(``dataloaders/dataloader_cpt.py``, ``metrics/metrics_cpt.py``, ``bbt.py:375-402``). Its
templates and label words, for the ten MP2 tasks it covers, are ``BBT_CPT`` below, each
with the line it was read from. Text placeholders: ``{a}`` the example's text, ``{b}`` its
second text (pairs) or question (C3), ``{options}`` the lettered options of a
multiple-choice example ("A、option;B、option;", ``dataloader_cpt.py:238-240``), ``{mask}``
the [MASK] token. Black-Box-Tuning's label word for an example is the FIRST token of its
word (``dataloader_cpt.py:54`` keeps ``labels[0]``; ``metrics_cpt.py`` keys each label by
``tokenizer.encode(word)[0]``): with CPT's character vocabulary, 不好 is read as 不.

Tasks Black-Box-Tuning has no template for (the embedded English tasks): the stated rule of
``cloze_for``: the task's own MRC template with [MASK] where MP2's layout lists the options,
and the task's own label words as the verbalizer, each read by its first token as above.
Extractive tasks have no cloze form (no label word answers them): BBT and BBTv2 decline
them, as MP2 Table 3 prints "–" for their cells.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

LETTERS = "ABCDEFGHIJKLMNOP"


@dataclass(frozen=True)
class ClozeTemplate:
    """``text``: the sentence after the prompt slots, with {a}, {b}, {options} and one
    {mask}. ``words``: the label word of each label index (classification); None for
    multiple choice, whose label words are the letters of its options. ``source``: where
    the template was read (or the rule that made it)."""

    text: str
    words: Optional[Tuple[str, ...]]
    source: str

    def __post_init__(self) -> None:
        if self.text.count("{mask}") != 1:
            raise ValueError(f"cloze template {self.text!r}: needs exactly one {{mask}}")


_SENTIMENT = " 。 {a} 。 总之很{mask} ."            # dataloader_cpt.py:80 (ChnSent), :199 (Amazon)
_TOPIC = " 。 {a} 。 这句话的主题是{mask} ."        # dataloader_cpt.py:109 (THUCNews), :264 (TNews)
_PAIR = '"{a}"与"{b}"两句话的意思是{mask}的。'       # dataloader_cpt.py:130, :152, :175, :219
_FILE = "Black-Box-Tuning dataloaders/dataloader_cpt.py"

BBT_CPT = {
    "chnsent": ClozeTemplate(_SENTIMENT, ("差", "好"), f"{_FILE}:71-85"),
    "amazon": ClozeTemplate(_SENTIMENT, ("差", "不好", "一般", "好", "赞"), f"{_FILE}:187-204"),
    # BBT's words at label indices 2 and 5 (房产, 政治) differ from MPMP's (财经, 八卦), whose
    # label order the harness's THUCNews copy follows: the words are BBT's, by index
    "thucnews": ClozeTemplate(_TOPIC, ("体育", "娱乐", "房产", "教育", "时尚", "政治", "游戏", "社会", "科技", "经济"),
                              f"{_FILE}:92-114"),
    "tnews": ClozeTemplate(_TOPIC, ("房产", "汽车", "金融", "体育", "文化", "娱乐", "教育", "科技", "军事", "旅游", "世界",
                                    "农业", "股票", "游戏", "故事"), f"{_FILE}:256-269"),
    "lcqmc": ClozeTemplate(_PAIR, ("矛盾", "相似"), f"{_FILE}:121-135"),
    "bq": ClozeTemplate(_PAIR, ("矛盾", "相似"), f"{_FILE}:210-224"),
    "cmnli": ClozeTemplate(_PAIR, ("矛盾", "中立", "相似"), f"{_FILE}:142-157"),
    "ocnli": ClozeTemplate(_PAIR, ("矛盾", "中立", "相似"), f"{_FILE}:165-180"),
    "ccpm": ClozeTemplate('在选项{options}中，与语段"{a}"意思最接近的选项是{mask}。', None, f"{_FILE}:230-249"),
    # BBT's C3Loader reads CCPM's files (:275, a slip); its template is the one used here
    "c3": ClozeTemplate('语段"{a}"。问题"{b}"。选项"{options}"答案是{mask}。', None, f"{_FILE}:276-294"),
}


def cloze_for(task) -> Optional[ClozeTemplate]:
    """The task's cloze form: Black-Box-Tuning's where it has one, else the stated rule for a
    classification task (its MRC template, then [MASK]; its label words); None where there
    is none (extractive tasks, multiple-choice tasks Black-Box-Tuning does not cover)."""
    if task.name in BBT_CPT:
        return BBT_CPT[task.name]
    if task.kind != "classification":
        return None
    return ClozeTemplate(task.template.text.rstrip() + " {mask}", tuple(task.labels),
                         "rule: the task's MRC template with [MASK] in place of the options; its label words")


def options_text(options: Tuple[str, ...]) -> str:
    """Black-Box-Tuning's option list, ``A、first;B、second;`` (``dataloader_cpt.py:238-240``)."""
    if len(options) > len(LETTERS):
        raise ValueError(f"{len(options)} options: at most {len(LETTERS)} letters")
    return "".join(f"{LETTERS[i]}、{o};" for i, o in enumerate(options))
