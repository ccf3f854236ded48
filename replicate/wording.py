"""PPT's words in each language: the option letters, the MCC listing, the patterns of the
pre-training tasks and the hybrid hard prompts, and the SPC verbalizer (Gu et al. 2022: eqs
3-5 and Appendix Table 1 for English, Appendix B eqs 1-3 and Appendix Table 1 for Chinese).
``replicate.formats`` lays tasks out with them and ``replicate.tasks.documents`` builds the
pre-training tasks with them, each by the task's ``language``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

LETTERS = "ABCDEFGHIJKLMNOP"  # PPT's MCC label words: up to 16 options (§3.3, footnote 2)
ZH_LETTERS = ("一", "二", "三", "四", "五", "六", "七", "八", "九", "十",
              "十一", "十二", "十三", "十四", "十五", "十六")  # PPT Appendix B eq 2: 一 ... 六


@dataclass(frozen=True)
class Wording:
    """PPT's words in one language. letters, item, joiner: the MCC listing ("A. s1 B. s2");
    answer: the end of the MCC pattern (eq 4); hybrid_answer: the hybrid MCC prompt's;
    hybrid: Appendix Table 1's prompts in the MRC layout (the options follow the text; "mcc+b"
    for a task with a question); pretraining: the pre-training patterns (eqs 3-5); spc_labels:
    the SPC pre-training verbalizer (eq 3), in label order; separator: between the options."""

    letters: Tuple[str, ...]
    item: str
    joiner: str
    answer: str
    hybrid_answer: str
    hybrid: Dict[str, str]
    pretraining: Dict[str, str]
    spc_labels: Tuple[str, ...]
    separator: str


WORDINGS = {
    # PPT eqs 3-5 and Appendix Table 1 (English)
    "en": Wording(tuple(LETTERS), "{letter}. {text}", " ", " Answer is ", " The answer is ",
                  hybrid={"ssc": "{a} . It was ", "spc": "Question: {a} ? {b} ", "mcc": "We ask {a} ? ",
                          "mcc+b": "We ask {a} {b} ? "},
                  pretraining={"ssc": "{a} . ", "spc": "{a} ? {b} ", "mcc": "{a} ? ", "mcc+b": "{a} {b} ? "},
                  spc_labels=("no", "maybe", "yes"), separator=","),
    # PPT Appendix B eqs 1-3 and Appendix Table 1 (Chinese)
    "zh": Wording(ZH_LETTERS, "{letter}、{text}", "", "答案是", "答案是：",
                  hybrid={"ssc": "{a}。这很", "spc": "问题：{a}？{b}", "mcc": "问题：{a}？", "mcc+b": "问题：{a}{b}？"},
                  pretraining={"ssc": "{a}。", "spc": "{a}？{b}", "mcc": "{a}？", "mcc+b": "{a}{b}？"},
                  spc_labels=("矛盾", "中立", "相似"), separator="，"),
}
