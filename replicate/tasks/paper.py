"""The 14 downstream tasks of MP2 Table 3, loaded from the Hugging Face Hub with ``datasets``.

Nothing here touches the network at import or DAG-construction time: ``load`` is called
only inside a training job. A user without the Hub (or with a private copy) points a task
at local files with the same schema via the config key ``paper_data_files`` (the tests do
exactly that with small fixtures, in the Hub's schemas). Templates, label words and option
order are those of the authors' code (MPMP), of which MP2 Table 7 prints shortened examples;
``template_from_code=False`` marks the two COTE tasks, whose question MPMP keeps in its data
files (a ``question`` field), not in its code; the harness asks its own.

Hub ids: the CLUE configs (``clue/clue``) and ChnSentiCorp (``lansinuote/ChnSentiCorp``)
were checked against their dataset cards; ``verified_hub_id=False`` marks ids taken from
secondary listings that could not be checked from the build machine. MP2's own copies of
THUCNews, Amazon, CCPM and COTE are not on the Hub; MPMP released them with its other
datasets as an archive of loading-script folders (its README, ``README.md:6``), so those
need ``paper_data_files``, exported and renamed to the schemas read here
(docs/methods/mp2.md, "MPMP's datasets and paper_data_files").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence

from ..errors import DataError
from .base import Example, Pools, TaskSpec, Template


def _label_index(value, names: Optional[Sequence[str]], order: Optional[Sequence[int]]) -> int:
    """The label index of a row's label.

    ``names``: the dataset's label names in its own index order (a ClassLabel's names), used
    when a local file stores the name instead of the integer the Hub gives. ``order`` maps
    the dataset's index to the index of the task's label words (MPMP lists the options in
    its own order, e.g. NLI as 矛盾，中立，相似). Unlabelled rows (-1, the CLUE test
    split) stay -1."""
    if isinstance(value, str) and names is not None and value in names:
        y = names.index(value)
    else:
        try:
            y = int(value)
        except (TypeError, ValueError):
            raise DataError(f"label {value!r} is neither an integer nor one of {list(names or [])}") from None
    if y < 0:
        return -1
    return order[y] if order is not None else y


def _row_single(text: str = "sentence", label: str = "label", names=None, order=None):
    def convert(i: int, row: Mapping) -> Optional[Example]:
        y = _label_index(row[label], names, order)
        return None if y < 0 else Example(id=str(row.get("idx", i)), text=str(row[text]), label=y)
    return convert


def _row_pair(names: Optional[Sequence[str]] = None, order=None, a: str = "sentence1", b: str = "sentence2",
              label: str = "label"):
    def convert(i: int, row: Mapping) -> Optional[Example]:
        y = _label_index(row[label], names, order)
        return None if y < 0 else Example(id=str(row.get("idx", i)), text=str(row[a]), text_b=str(row[b]), label=y)
    return convert


def _row_squad(i: int, row: Mapping) -> Optional[Example]:
    answers = row["answers"]
    texts, starts = list(answers["text"]), list(answers["answer_start"])
    if not texts:
        return None
    return Example(id=str(row.get("id", i)), text=str(row["context"]), text_b=str(row["question"]),
                   answers=tuple(texts), answer_start=int(starts[0]))


class _C3Rows:
    """CLUE's C3 loader gives every question of a document the document's index as ``id``
    (train and validation), so the id is made unique per question: ``<document>-<k>`` for
    the k-th question of that document in the split."""

    def __init__(self):
        self.seen: Dict[str, int] = {}

    def __call__(self, i: int, row: Mapping) -> Optional[Example]:
        if not row.get("answer"):
            return None  # the test split has no answers
        doc = str(row.get("id", i))
        k = self.seen.get(doc, 0)
        self.seen[doc] = k + 1
        choices = tuple(row["choice"])
        return Example(id=f"{doc}-{k}", text="".join(row["context"]), text_b=str(row["question"]),
                       options=choices, label=choices.index(row["answer"]))


def _row_ccpm(i: int, row: Mapping) -> Optional[Example]:
    return Example(id=str(row.get("id", i)), text=str(row["translation"]), options=tuple(row["choices"]),
                   label=int(row["answer"]))


def _row_keyword(i: int, row: Mapping) -> Optional[Example]:
    text, keyword = str(row["text"]), str(row["keyword"])
    start = text.find(keyword)
    if start < 0:
        return None
    return Example(id=str(row.get("id", i)), text=text, text_b=COTE_QUESTION, answers=(keyword,),
                   answer_start=start)


@dataclass(frozen=True)
class HubSource:
    """A dataset on the Hub (``path``, ``name``) with its train split and test split.

    MP2 §4.1: the test set is the original development set (the test set where a task has no
    development set); the few-shot train and dev sets are drawn from ``train_split``.
    ``convert(index, row) -> Example | None`` maps a row (None drops unlabelled rows).
    """

    path: Optional[str]
    name: Optional[str]
    train_split: str
    test_split: str
    convert: Callable
    provenance: str
    verified_hub_id: bool = False
    data_files: Dict[str, str] = field(default_factory=dict)  # set from config for local copies

    fetched_files = ()

    def with_files(self, files: Mapping[str, str]) -> "HubSource":
        return HubSource(self.path, self.name, "train", "test", self.convert, self.provenance,
                         self.verified_hub_id, dict(files))

    def check(self, data_dir: str) -> None:
        import os
        missing = {"train", "test"} - set(self.data_files) if self.data_files else set()
        if missing:  # the config schema lets a task name any Hub split; these read train and test
            raise DataError(f"paper_data_files: no file for split(s) {sorted(missing)} ({self.provenance})")
        for split, path in self.data_files.items():
            if not os.path.exists(path):
                raise DataError(f"missing data file {path} (paper_data_files, split {split})")
        if not self.data_files and self.path is None:
            raise DataError(f"no Hub copy is registered ({self.provenance}); set paper_data_files for it")

    def load(self, data_dir: str) -> Pools:
        import datasets  # imported here: loading is the job's work, never the DAG's

        self.check(data_dir)
        if self.data_files:
            fmt = "csv" if next(iter(self.data_files.values())).endswith(".csv") else "json"
            ds = datasets.load_dataset(fmt, data_files=dict(self.data_files))
        else:
            ds = datasets.load_dataset(self.path, self.name)

        def convert(split: str) -> List[Example]:
            out = []
            row_to_example = self.convert() if isinstance(self.convert, type) else self.convert
            for i, row in enumerate(ds[split]):
                ex = row_to_example(i, row)
                if ex is not None:
                    out.append(ex)
            return out

        return Pools(train=convert(self.train_split), test=convert(self.test_split))


# Templates and label words are MPMP's (Hzfinfdu/MPMP ``Deep/dataloader.py``; line numbers
# there in each comment). The option order is MPMP's; ``order`` maps a dataset's label index
# to it. MP2 Table 7 prints shortened examples of the same templates (without the quotes
# around the text, and CMNLI's options as 矛盾，蕴含，中立); the code's versions are the ones
# MP2's prompts were trained and tested with.
NLI_NAMES = ("neutral", "entailment", "contradiction")  # clue cmnli/ocnli ClassLabel order
NLI_WORDS = ("矛盾", "中立", "相似")                    # MPMP Deep, CMNLI :277-288, OCNLI :249-260
NLI_ORDER = (1, 2, 0)                                   # neutral -> 中立, entailment -> 相似, contradiction -> 矛盾
TNEWS_CODES = ("100", "101", "102", "103", "104", "106", "107", "108", "109", "110", "112", "113", "114", "115", "116")
# MPMP :655-667, in its option order; CLUE's codes name news_story, _culture, _entertainment,
# _sports, _finance, _house, _car, _edu, _tech, _military, _travel, _world, _stock,
# _agriculture, _game.
TNEWS_WORDS = ("房产", "汽车", "金融", "体育", "文化", "娱乐", "教育", "科技", "军事", "旅游", "世界", "农业", "股票", "游戏", "故事")
TNEWS_ORDER = (14, 4, 5, 3, 2, 0, 1, 6, 7, 8, 9, 10, 12, 11, 13)  # clue index (code order) -> option index
SIMILAR_WORDS = ("矛盾", "相似")  # MPMP BQ :319-330, LCQMC :600-611; nli_zh: 1 = similar
EXTRACTIVE = '抽取式问答：文本"{a}问题"{b}'  # MPMP ExtractiveQABasicDataset :203, :226-227
# MPMP's COTE copies carry their own question field, which is not in its repository; the
# harness asks for the opinion target.
COTE_QUESTION = "评价对象是什么？"
CLUE = "CLUE benchmark (Xu et al. 2020), Hub dataset clue/clue"


def _task(name, kind, labels, metric, track, template, source, paper_name, template_from_code=True):
    return TaskSpec(name=name, kind=kind, labels=tuple(labels), metric=metric, track=track, suite="paper",
                    template=Template(template), source=source, licence="see the dataset's own card",
                    description=f"MP2 Table 3: {paper_name}", paper_name=paper_name,
                    extra={"template_from_code": template_from_code}, language="zh")


PAPER_TASKS: List[TaskSpec] = [
    # UNSEEN DATA (MP2 upstream tasks, downstream samples held out of pre-training)
    _task("amazon", "classification", ("非常差", "较差", "一般", "较好", "非常好"), "acc", "unseen-data",
          '打分："{a}"的评价是？选项：',  # :729-740
          HubSource(None, None, "train", "test", _row_single(text="text"),
                    "SophonPlus/ChineseNlpCorpus yf_amazon (MP2 Table 8); not on the Hub"), "Amazon"),
    _task("thucnews", "classification", ("体育", "娱乐", "财经", "教育", "时尚", "八卦", "游戏", "社会", "科技", "经济"),
          "acc", "unseen-data", '主题识别："{a}"的主题是？选项：',  # :305-316
          HubSource(None, None, "train", "test", _row_single(text="text"),
                    "thunlp/THUCTC 10-class subset (MP2 Table 8); not on the Hub; labels in MPMP's order"),
          "THUCNews"),
    _task("bq", "classification", SIMILAR_WORDS, "acc", "unseen-data", '意思判别："{a}"与"{b}"的意思是？选项：',
          HubSource("shibing624/nli_zh", "BQ", "train", "validation", _row_pair(),
                    "BQ corpus (Chen et al. 2018) via shibing624/nli_zh"), "BQ"),
    _task("cmnli", "classification", NLI_WORDS, "acc", "unseen-data", '意思判别："{a}"与"{b}"的关系是？选项：',
          HubSource("clue/clue", "cmnli", "train", "validation", _row_pair(NLI_NAMES, NLI_ORDER), CLUE, True),
          "CMNLI"),
    _task("cmrc-2018", "extractive", (), "f1", "unseen-data", EXTRACTIVE,
          HubSource("clue/clue", "cmrc2018", "train", "validation", _row_squad, CLUE, True), "CMRC-2018"),
    _task("ccpm", "multiple-choice", (), "acc", "unseen-data", '诗句理解：与句子"{a}"最相近的诗句是？选项：',  # :841-850
          HubSource(None, None, "train", "validation", _row_ccpm,
                    "CCPM (Li et al. 2021), THUNLP; not on the Hub"), "CCPM"),
    _task("cote-mfw", "extractive", (), "f1", "unseen-data", EXTRACTIVE,
          HubSource(None, None, "train", "test", _row_keyword, "COTE-MFW (Li et al. 2018); not on the Hub"),
          "COTE-MFW", template_from_code=False),
    # UNSEEN TASK (held out of pre-training)
    _task("chnsent", "classification", ("负面", "正面"), "acc", "unseen-task", '情感分析："{a}"的情感是？选项：',
          HubSource("lansinuote/ChnSentiCorp", None, "train", "validation",
                    _row_single(text="text", names=("negative", "positive")),
                    "ChnSentiCorp (SophonPlus/ChineseNlpCorpus) via lansinuote/ChnSentiCorp", True), "ChnSent"),
    _task("tnews", "classification", TNEWS_WORDS, "acc", "unseen-task", '主题识别："{a}"的主题是？选项：',
          HubSource("clue/clue", "tnews", "train", "validation", _row_single(names=TNEWS_CODES, order=TNEWS_ORDER),
                    CLUE, True), "TNews"),
    _task("ocnli", "classification", NLI_WORDS, "acc", "unseen-task", '意思判别："{a}"与"{b}"的关系是？选项：',
          HubSource("clue/clue", "ocnli", "train", "validation", _row_pair(NLI_NAMES, NLI_ORDER), CLUE, True),
          "OCNLI"),
    _task("lcqmc", "classification", SIMILAR_WORDS, "acc", "unseen-task", '意思判别："{a}"与"{b}"的关系是？选项：',
          HubSource("shibing624/nli_zh", "LCQMC", "train", "validation", _row_pair(),
                    "LCQMC (Liu et al. 2018) via shibing624/nli_zh"), "LCQMC"),
    _task("drcd", "extractive", (), "f1", "unseen-task", EXTRACTIVE,
          HubSource("clue/clue", "drcd", "train", "validation", _row_squad, CLUE, True), "DRCD"),
    # MPMP :408-417 (an ASCII comma before 选项, as in the code)
    _task("c3", "multiple-choice", (), "acc", "unseen-task", '阅读选择：文档"{a}"，问题"{b}",选项：',
          HubSource("clue/clue", "c3", "train", "validation", _C3Rows, CLUE, True), "C3"),
    _task("cote-bd", "extractive", (), "f1", "unseen-task", EXTRACTIVE,
          HubSource(None, None, "train", "test", _row_keyword, "COTE-BD (Li et al. 2018); not on the Hub"),
          "COTE-BD", template_from_code=False),
]
