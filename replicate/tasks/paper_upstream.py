"""The 38 upstream (multi-task pre-training) tasks of MP2 (Appendix D.1, Table 8).

Where everything comes from
---------------------------
* The task list and its order are MPMP's ``Dataset_list`` (Hzfinfdu/MPMP, the authors' code,
  commit c0b9c09; the order is the router's task index order). ``Deep/dataloader.py:923-969``
  lists only 37 tasks: ``CSLDataset`` is commented out there (:929), although the class is
  defined (:378-389) and MP2 Table 8 lists CSL and §3.3/§4 speak of 38 tasks and a 38 x 8
  router. ``Shallow/dataloader.py:923-969`` is the same list with CSL in (index 3) and gives
  exactly Table 8's 38 datasets, so ``MP2_UPSTREAM`` follows it. ``MPMP_DEEP_OMITS`` names
  the task the released Deep list leaves out.
* Templates, label words and the option order are copied from ``Deep/dataloader.py``
  (line numbers in each comment). Deep and Shallow agree on all of them except the third
  NLI option, "相似" in Deep and "蕴含" in Shallow (MP2 Table 7 prints 蕴含); Deep's is used,
  as in ``paper.py``. MPMP indexes its label words with ``int(example['label'])``, so its
  data files already store the label in its option order: the converters here take the
  label as that index (or the label word itself, if a local file stores the word).
* Field names are the ones MPMP's code reads (``text``; ``text1``/``text2``;
  ``question``/``reply``; ``subject``/``object``/``text``; ``text``/``pronoun``/``quote``;
  ``abst``/``keyword``; ``question``/``options``/``label``; extractive ``context``,
  ``question``, ``answer_start``, ``answer_text``, ``is_impossible``).
* Seven of the 38 are also downstream tasks in ``paper.py`` (track "unseen-data": amazon,
  thucnews, bq, cmnli, cmrc-2018, ccpm, cote-mfw); they are named in ``MP2_UPSTREAM`` and
  not redefined here. ``PAPER_UPSTREAM_TASKS`` holds the other 31 (track "upstream").

What is verified and what is not
--------------------------------
Verified (against the MPMP mirror): the list, its order, every template, label word and
option order, and the field names. NOT verified: any Hub copy, and the released data.
MPMP loads every dataset from a local loading script under ``DataConfig.meta_path``
(``/remote-home/share/zfhe/MPMP_data/<dir>/<script>.py``, splits ``train``, ``validation``
and ``downstream``, ``Deep/dataloader.py:100-118``); the authors released those 45 dataset
folders as an archive linked from MPMP's README (``README.md:6``, Google Drive), which this
harness has not downloaded. MPMP names no Hub id at all. So every task here has
``HubSource(None, None, ...)`` ("not on the Hub: needs paper_data_files") and
``verified_hub_id=False``; ``extra["mpmp_script"]`` records MPMP's script path. The scripts
do not run under ``datasets`` >= 4: export each split to JSON lines with an older
``datasets`` and point ``paper_data_files`` at them (``train``: MPMP's train split,
``test``: its validation split); the rows then load as they are, in MPMP's field names
(docs/methods/mp2.md, "MPMP's datasets and paper_data_files"). Where a public Hub copy of
the same corpus is well known it is recorded as ``extra["hub_candidate"]``, unchecked (this
build machine cannot reach the Hub) and with a different schema and label order from
MPMP's, so it is not usable as is.

Representation notes
--------------------
* ``Template`` fills only ``{a}`` and ``{b}``. Three MPMP templates insert three fields
  (FinRe and SanWen: subject, object, sentence; CLUE-WSC: sentence, pronoun, quote). Their
  converters put the sentence in ``text`` and render the other two, with MPMP's own
  surrounding words and quotes, into ``text_b``; the filled template is then the very string
  MPMP's f-string produces (tests/test_paper_upstream.py checks this).
* DuReader-Checklist (``has_is_impossible=True``): MPMP trains unanswerable questions to point
  at "没有答案" inside its hard prompt (:218-220). An ``Example``'s answer is a span of its
  text, so the converter drops unanswerable rows; the template keeps MPMP's "（可能没有答案）".
* COTE-DP uses MPMP's extractive schema (its data carries the question); ``paper.py``'s
  COTE-MFW/COTE-BD instead read a ``text``/``keyword`` schema with a harness question.
"""

from __future__ import annotations

import dataclasses
from typing import List, Mapping, Optional, Sequence, Tuple

from .base import Example, TaskSpec
from .paper import NLI_WORDS, SIMILAR_WORDS, HubSource, _label_index, _row_pair, _row_single, _task

MPMP_DATA_DIR = "/remote-home/share/zfhe/MPMP_data"  # MPMP Deep/dataconfig.py: DataConfig.meta_path

# MPMP's Dataset_list order (Shallow/dataloader.py:923-969; Deep's list is this minus "csl").
MP2_UPSTREAM: Tuple[str, ...] = (
    "afqmc",              # 0  AFQMCDataset
    "paws",               # 1  PawsDataset
    "cmnli",              # 2  CMNLIDataset            (paper.py, unseen-data)
    "csl",                # 3  CSLDataset              (commented out of Deep's list, :929)
    "thucnews",           # 4  THUCNewsDataset         (paper.py, unseen-data)
    "bq",                 # 5  BQDataset               (paper.py, unseen-data)
    "chip-ctc",           # 6  ChipCtcDataset
    "dogwhistle",         # 7  DogWhistleDataset
    "finre",              # 8  FinReDataset
    "dureader-checklist", # 9  DuReaderChecklistDataset
    "dureader-robust",    # 10 DuReaderRobustDataset
    "chip-sts",           # 11 ChipStsDataset
    "cmrc-2018",          # 12 Cmrc2018Dataset         (paper.py, unseen-data)
    "cluewsc",            # 13 ClueWSCDataset
    "fudan-tc",           # 14 Fudan_tcDataset
    "kuake-qic",          # 15 KUAKE_QICDataset
    "kuake-qqr",          # 16 KUAKE_QQRDataset
    "nlpcc-tc",           # 17 nlpcc_tcDataset
    "sanwen",             # 18 SanWenDataset
    "toutiao-tc",         # 19 toutiao_tcDataset
    "xnli",               # 20 xnliDataset
    "nlpcc-dbqa",         # 21 nlpcc_dbqaDataset
    "cote-dp",            # 22 CoteDpDataset
    "cote-mfw",           # 23 CoteMfwDataset          (paper.py, unseen-data)
    "ccpm",               # 24 CCPMDataset             (paper.py, unseen-data)
    "amazon",             # 25 AmazonDataset           (paper.py, unseen-data)
    "baoxian-zhidao",     # 26 BaoxianzhidaoDataset
    "dianping",           # 27 DianpingDataset
    "dianxin-zhidao",     # 28 DianxinzhidaoDataset
    "dmsc",               # 29 DMSCDataset
    "finance-zhidao",     # 30 FinancezhidaoDataset
    "law-zhidao",         # 31 LawzhidaoDataset
    "liantong-zhidao",    # 32 LiantongzhidaoDataset
    "nonghang-zhidao",    # 33 NonghangzhidaoDataset
    "online-shopping",    # 34 OnlineShppingDataset
    "touzi-zhidao",       # 35 TouzizhidaoDataset
    "waimai",             # 36 WaimaiDataset
    "weibo-sentiment",    # 37 WeiboSentimentDataset
)
# Upstream tasks that paper.py already registers (track "unseen-data").
UPSTREAM_IN_PAPER_TASKS: Tuple[str, ...] = ("amazon", "thucnews", "bq", "cmnli", "cmrc-2018", "ccpm", "cote-mfw")
# In MP2_UPSTREAM but commented out of the released Deep/dataloader.py Dataset_list (:929).
MPMP_DEEP_OMITS: Tuple[str, ...] = ("csl",)

# ---------------------------------------------------------------------------------------
# Label words, in MPMP's option order.
ZHIDAO_WORDS = ("不符", "符合")           # :747 (all seven *zhidao tasks)
SAME_WORDS = ("不同", "相同")             # CLUE-WSC :368, CSL :382
POLARITY_WORDS = ("负面", "正面")         # :631, :885, :899, :913
RATING_WORDS = ("非常差", "较差", "一般", "较好", "非常好")  # :857, :871 (as Amazon :733)
CHIP_CTC_WORDS = ('疾病', '症状', '迹象', '孕期', '肿瘤', '过敏', '口腔', '药学', '疗法', '设备', '护理', '诊断', '年龄',
                  '性别', '教育', '地址', '种族', '意愿', '容量', '伦理', '睡眠', '运动', '饮食', '吸烟', '献血', '就医',
                  '残障', '健康', '数据', '综合', '饮酒者', '性相关', '符合协议', '成瘾行为', '器官组织', '预期寿命',
                  '风险评估', '受体状态', '病情发展', '特殊体征', '专业知识', '实验室检查', '研究者决策', '参与其他研究')  # :337-340
FINRE_WORDS = ('未知', '注资', '拥有', '纠纷', '自己', '增持', '重组', '买资', '签约', '持股', '交易', '入股', '转让', '成立',
               '分析', '合作', '帮助', '发行', '商讨', '合并', '竞争', '订单', '减持', '合资', '收购', '借壳', '欠款', '被发行',
               '被转让', '被成立', '被注资', '被持股', '被拥有', '被收购', '被帮助', '被借壳', '被买资', '被欠款', '被增持',
               '拟收购', '被减持', '被分析', '被入股', '被拟收购')  # :396-398
FUDAN_WORDS = ("艺术", "文学", "教育", "哲学", "历史", "空间", "能源", "电力", "交流", "计算机", "矿业", "运输", "环境", "建筑",
               "金融", "法律", "医药", "军事", "政治", "体育")  # :486-487
KUAKE_QIC_WORDS = ("治疗方案", "疾病表述", "指标解读", "病情诊断", "就医建议", "注意事项", "后果表述", "病因分析", "功效作用",
                   "医疗费用", "其他")  # :547
SANWEN_WORDS = ("未知", "创建", "使用", "贴近", "位于", "占有", "社会相关", "家庭关系", "一般与特别", "部分与整体")  # :645
TOUTIAO_WORDS = ("房产", "汽车", "金融", "体育", "文化", "娱乐", "教育", "科技", "军事", "旅游", "世界", "农业", "股票",
                 "游戏", "故事")  # :674-675 (TNews's words)

# Templates (MPMP's f-strings with its field names replaced by {a}/{b}).
PAIR_MEANING = '意思判别："{a}"与"{b}"的意思是？选项：'    # AFQMC :246, CHIP-STS :361
PAIR_RELATION = '意思判别："{a}"与"{b}"的关系是？选项：'   # PAWS :274, XNLI :696, KUAKE-QQR :584, NLPCC-DBQA :569
ZHIDAO = '问答判断："{a}"的回答"{b}"符合问题吗？选项：'      # :754 (all seven *zhidao tasks)
TOPIC = '主题识别："{a}"的主题是？选项：'                  # :347, :494, :554, :682
RATING = '打分："{a}"的评价是？选项：'                      # :864, :878
SENTIMENT = '情感分析："{a}"的情感是？选项：'               # :892, :906, :920
RELATION = '关系判别：{b}在句子"{a}"中的关系是？选项：'      # FinRe :405, SanWen :652; {b} from _row_relation
FINRE_B = '主语"{subject}"和宾语"{object}"'                   # :405
SANWEN_B = '主体"{subject}"和客体"{object}"'                  # :652
WSC = '指代判别:在句子"{a}"中，{b}一致吗？选项：'              # :375 (ASCII colon, as in the code)
WSC_B = '代词"{pronoun}"指代的和"{quote}"'                    # :375
CSL = '主题判别:"{a}"和关键词"{b}"一致吗？选项：'             # :389 (ASCII colon, as in the code)
DOGWHISTLE = '近义词选择：与词语"{a}"最相近的词是？选项：'     # :429
EXTRACTIVE = '抽取式问答：文本"{a}问题"{b}'                    # :203, :226-227 (= paper.EXTRACTIVE)
EXTRACTIVE_MAYBE_NONE = '抽取式问答（可能没有答案）：文本"{a}问题"{b}'  # :201, :226-227


# ---------------------------------------------------------------------------------------
# Row converters for MPMP's schemas.
def _row_relation(b_format: str, names: Sequence[str], text: str = "text", label: str = "label"):
    """A row with a sentence and further fields that MPMP's template inserts around it:
    ``text`` gets the sentence, ``text_b`` the other fields rendered with MPMP's own words
    (``b_format``, str() of each value, as an f-string renders it)."""

    def convert(i: int, row: Mapping) -> Optional[Example]:
        y = _label_index(row[label], names, None)
        if y < 0:
            return None
        b = b_format.format_map({k: str(v) for k, v in row.items()})
        return Example(id=str(row.get("idx", i)), text=str(row[text]), text_b=b, label=y)
    return convert


def _row_choice(i: int, row: Mapping) -> Optional[Example]:
    """MPMP MultipleChoiceQABasicDataset (:166-185): ``options`` in order, ``label`` indexes them."""
    options = tuple(str(o) for o in row["options"])
    return Example(id=str(row.get("idx", i)), text=str(row["question"]), options=options, label=int(row["label"]))


def _row_mpmp_extractive(i: int, row: Mapping) -> Optional[Example]:
    """MPMP ExtractiveQABasicDataset (:216-232): one ``answer_text`` at char ``answer_start`` of
    ``context``. Unanswerable rows (``is_impossible``) are dropped (see the module notes)."""
    if row.get("is_impossible"):
        return None
    answer = str(row["answer_text"])
    if not answer:
        return None
    return Example(id=str(row.get("id", row.get("idx", i))), text=str(row["context"]), text_b=str(row["question"]),
                   answers=(answer,), answer_start=int(row["answer_start"]))


# ---------------------------------------------------------------------------------------
_HUB_CANDIDATES = {
    # Public Hub copies of the same corpora: NOT checked, and in their own schemas/label orders.
    "afqmc": "clue/clue:afqmc", "csl": "clue/clue:csl", "cluewsc": "clue/clue:cluewsc2020",
    "xnli": "xnli:zh", "paws": "paws-x:zh",
}


def _up(name: str, kind: str, labels: Sequence[str], family: str, template: str, script: str, convert,
        paper_name: str, table8_id: int, reference: str) -> TaskSpec:
    metric = "f1" if kind == "extractive" else "acc"
    provenance = (f"{paper_name} ({reference}; MP2 Table 8 #{table8_id}); MPMP loads {MPMP_DATA_DIR}/{script}, "
                  f"a local loading script (MPMP's released dataset archive); not on the Hub: needs "
                  f"paper_data_files in MPMP's schema")
    source = HubSource(None, None, "train", "validation", convert, provenance, False)
    spec = _task(name, kind, labels, metric, "upstream", template, source, paper_name)
    extra = dict(spec.extra, mpmp_script=script, table8_id=table8_id)
    if name in _HUB_CANDIDATES:
        extra["hub_candidate"] = _HUB_CANDIDATES[name]
    return dataclasses.replace(spec, family=family, track="upstream",
                               description=f"MP2 Table 8 (upstream): {paper_name}", extra=extra)


_SOPHON = "SophonPlus/ChineseNlpCorpus"
_CLUE = "Xu et al. 2020, CLUE"
_CBLUE = "Zhang et al. 2022, CBLUE"

PAPER_UPSTREAM_TASKS: List[TaskSpec] = [
    _up("afqmc", "classification", SIMILAR_WORDS, "pair", PAIR_MEANING,  # :235-246
        "AFQMC/AFQMC.py", _row_pair(SIMILAR_WORDS, a="text1", b="text2"), "AFQMC", 1, _CLUE),
    _up("paws", "classification", SIMILAR_WORDS, "pair", PAIR_RELATION,  # :263-274
        "paws/paws.py", _row_pair(SIMILAR_WORDS, a="text1", b="text2"), "Paws", 2, "Yang et al. 2019, PAWS-X"),
    # CSL :378-389; keyword rendered with str(), as MPMP's f-string renders it (a list if the file holds one)
    _up("csl", "classification", SAME_WORDS, "pair", CSL,
        "csl/csl.py", _row_pair(SAME_WORDS, a="abst", b="keyword"), "CSL", 4, _CLUE),
    _up("chip-ctc", "classification", CHIP_CTC_WORDS, "topic", TOPIC,  # :333-347
        "CHIP_CTC/CHIP_CTC.py", _row_single(text="text", names=CHIP_CTC_WORDS), "CHIP-CTC", 18, _CBLUE),
    _up("dogwhistle", "multiple-choice", (), "multiple-choice", DOGWHISTLE,  # :420-429
        "Dog_whistle/dog_whistle.py", _row_choice, "DogWhistle", 38, "Xu et al. 2021"),
    _up("finre", "classification", FINRE_WORDS, "other", RELATION,  # :392-405 (relation classification)
        "fin_re/fin_re.py", _row_relation(FINRE_B, FINRE_WORDS), "FinRe", 19, "Li et al. 2019"),
    _up("dureader-checklist", "extractive", (), "extractive", EXTRACTIVE_MAYBE_NONE,  # :462-469, has_is_impossible
        "dureader_checklist/dureader_checklist.py", _row_mpmp_extractive, "DuReader-Checklist", 34,
        "baidu/DuReader"),
    _up("dureader-robust", "extractive", (), "extractive", EXTRACTIVE,  # :472-479
        "dureader_robust/dureader_robust.py", _row_mpmp_extractive, "DuReader-Robust", 35, "Tang et al. 2021"),
    _up("chip-sts", "classification", SIMILAR_WORDS, "pair", PAIR_MEANING,  # :350-361
        "CHIP_STS/CHIP_STS.py", _row_pair(SIMILAR_WORDS, a="text1", b="text2"), "CHIP-STS", 6, _CBLUE),
    _up("cluewsc", "classification", SAME_WORDS, "other", WSC,  # :364-375 (coreference)
        "cluewsc/cluewsc.py", _row_relation(WSC_B, SAME_WORDS), "CLUE-WSC", 31, _CLUE),
    _up("fudan-tc", "classification", FUDAN_WORDS, "topic", TOPIC,  # :482-494
        "Fudan_tc/fudan_tc.py", _row_single(text="text", names=FUDAN_WORDS), "Fudan-TC", 20, "source not found (MP2)"),
    _up("kuake-qic", "classification", KUAKE_QIC_WORDS, "topic", TOPIC,  # :543-554
        "KUAKE_QIC/KUAKE_QIC.py", _row_single(text="text", names=KUAKE_QIC_WORDS), "KUAKE-QIC", 21, _CBLUE),
    # :572-584; MPMP's comment (:572) says it did not know what labels 0/1/2 mean
    _up("kuake-qqr", "classification", NLI_WORDS, "pair", PAIR_RELATION,
        "KUAKE_QQR/KUAKE_QQR.py", _row_pair(NLI_WORDS, a="text1", b="text2"), "KUAKE-QQR", 7, _CBLUE),
    # :627-638: polarity labels under a "情感识别 ... 的主题是" template, as in the code
    _up("nlpcc-tc", "classification", POLARITY_WORDS, "sentiment", '情感识别："{a}"的主题是？选项：',
        "nlpcc_tc/nlpcc_tc.py", _row_single(text="text", names=POLARITY_WORDS), "NLPCC-TC", 22, "NLPCC 2016"),
    _up("sanwen", "classification", SANWEN_WORDS, "other", RELATION,  # :641-652 (relation classification)
        "SanWen/sanwen.py", _row_relation(SANWEN_B, SANWEN_WORDS), "SanWen", 30, "Xu et al. 2017"),
    _up("toutiao-tc", "classification", TOUTIAO_WORDS, "topic", TOPIC,  # :670-682
        "toutiao_tc/toutiao_tc.py", _row_single(text="text", names=TOUTIAO_WORDS), "Toutiao-TC", 29,
        "aceimnorstuvwxz/toutiao-text-classfication-dataset"),
    _up("xnli", "classification", NLI_WORDS, "pair", PAIR_RELATION,  # :685-696
        "xnli/xnli_zh.py", _row_pair(NLI_WORDS, a="text1", b="text2"), "XNLI", 8, "Conneau et al. 2018"),
    _up("nlpcc-dbqa", "classification", SIMILAR_WORDS, "pair", PAIR_RELATION,  # :557-569 (QA matching)
        "nlpcc_dbqa/nlpcc_dbqa.py", _row_pair(SIMILAR_WORDS, a="text1", b="text2"), "NLPCC-DBQA", 9, "NLPCC 2016"),
    _up("cote-dp", "extractive", (), "extractive", EXTRACTIVE,  # :709-716
        "COTE_DP/cote_dp.py", _row_mpmp_extractive, "COTE-DP", 32, "Li et al. 2018"),
    _up("baoxian-zhidao", "classification", ZHIDAO_WORDS, "pair", ZHIDAO,  # :743-754
        "baoxianzhidao/baoxianzhidao.py", _row_pair(ZHIDAO_WORDS, a="question", b="reply"), "Baoxian-zhidao", 15,
        _SOPHON),
    _up("dianping", "classification", RATING_WORDS, "sentiment", RATING,  # :853-864
        "dianping/dianping.py", _row_single(text="text", names=RATING_WORDS), "DianPing", 24, _SOPHON),
    _up("dianxin-zhidao", "classification", ZHIDAO_WORDS, "pair", ZHIDAO,  # :757-768
        "dianxinzhidao/dianxinzhidao.py", _row_pair(ZHIDAO_WORDS, a="question", b="reply"), "Dianxin-zhidao", 16,
        _SOPHON),
    _up("dmsc", "classification", RATING_WORDS, "sentiment", RATING,  # :867-878
        "dmsc/dmsc.py", _row_single(text="text", names=RATING_WORDS), "DMSC", 25, _SOPHON),
    _up("finance-zhidao", "classification", ZHIDAO_WORDS, "pair", ZHIDAO,  # :771-782
        "financezhidao/financezhidao.py", _row_pair(ZHIDAO_WORDS, a="question", b="reply"), "Finance-zhidao", 10,
        _SOPHON),
    _up("law-zhidao", "classification", ZHIDAO_WORDS, "pair", ZHIDAO,  # :785-796
        "lawzhidao/lawzhidao.py", _row_pair(ZHIDAO_WORDS, a="question", b="reply"), "Law-zhidao", 11, _SOPHON),
    _up("liantong-zhidao", "classification", ZHIDAO_WORDS, "pair", ZHIDAO,  # :799-810
        "liantongzhidao/liantongzhidao.py", _row_pair(ZHIDAO_WORDS, a="question", b="reply"), "Liantong-zhidao", 12,
        _SOPHON),
    _up("nonghang-zhidao", "classification", ZHIDAO_WORDS, "pair", ZHIDAO,  # :813-824
        "nonghangzhidao/nonghangzhidao.py", _row_pair(ZHIDAO_WORDS, a="question", b="reply"), "Nonghang-zhidao", 13,
        _SOPHON),
    _up("online-shopping", "classification", POLARITY_WORDS, "sentiment", SENTIMENT,  # :881-892
        "online_shopping/online_shopping.py", _row_single(text="text", names=POLARITY_WORDS), "Online-Shopping", 26,
        _SOPHON),
    _up("touzi-zhidao", "classification", ZHIDAO_WORDS, "pair", ZHIDAO,  # :827-838
        "touzizhidao/touzizhidao.py", _row_pair(ZHIDAO_WORDS, a="question", b="reply"), "Touzi-zhidao", 14, _SOPHON),
    _up("waimai", "classification", POLARITY_WORDS, "sentiment", SENTIMENT,  # :895-906
        "waimai/waimai.py", _row_single(text="text", names=POLARITY_WORDS), "Waimai", 27, _SOPHON),
    # :909-920: two labels in MPMP (Table 8 says 5)
    _up("weibo-sentiment", "classification", POLARITY_WORDS, "sentiment", SENTIMENT,
        "weibo_sentiment/weibo_sentiment.py", _row_single(text="text", names=POLARITY_WORDS), "Weibo-sentiment", 28,
        _SOPHON),
]


# Families for the 7 upstream tasks that paper.py registers (its TaskSpecs leave ``family``
# empty); same rules as above: Amazon is a rating task, THUCNews a topic task, BQ and CMNLI
# sentence pairs, CMRC-2018 and COTE-MFW extractive, CCPM multiple choice.
FAMILY_OF_PAPER_UPSTREAM = {"amazon": "sentiment", "thucnews": "topic", "bq": "pair", "cmnli": "pair",
                            "cmrc-2018": "extractive", "ccpm": "multiple-choice", "cote-mfw": "extractive"}


def upstream_family(spec: TaskSpec) -> str:
    """The family of an upstream task, whether defined here or in paper.py."""
    return spec.family or FAMILY_OF_PAPER_UPSTREAM.get(spec.name, "")


def upstream_specs(paper_tasks: Optional[Sequence[TaskSpec]] = None) -> List[TaskSpec]:
    """All 38 upstream TaskSpecs in ``MP2_UPSTREAM`` order: the 7 from ``paper.py`` (as
    registered there, track "unseen-data") and the 31 defined here."""
    if paper_tasks is None:
        from .paper import PAPER_TASKS as paper_tasks
    by_name = {s.name: s for s in paper_tasks}
    by_name.update({s.name: s for s in PAPER_UPSTREAM_TASKS})
    return [by_name[n] for n in MP2_UPSTREAM]
