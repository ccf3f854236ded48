"""The 14 downstream tasks of MP2 Table 3, loaded from the Hugging Face Hub with ``datasets``.

Nothing here touches the network at import or DAG-construction time: ``load`` is called
only inside a training job. A user without the Hub (or with a private copy) points a task
at local files with the same schema via the config key ``paper_data_files`` (the tests do
exactly that with small fixtures). Templates follow MP2 Table 7 (Chinese queries with the
options listed after ``选项：``); where Table 7 gives no template, one of the same shape is
used and marked ``template_from_paper=False``.

Hub ids: the CLUE configs (``clue/clue``) and ChnSentiCorp (``lansinuote/ChnSentiCorp``)
were checked against their dataset cards; ``verified_hub_id=False`` marks ids taken from
secondary listings that could not be checked from the build machine. MP2's own copies of
THUCNews, Amazon, CCPM and COTE are not on the Hub (the authors promised a release), so
those need ``paper_data_files``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence

from ..errors import DataError
from .base import Example, Pools, TaskSpec, Template

ZH_SEP, ZH_END = "，", "。"


def _row_single(labels: Sequence[str], text: str = "sentence", label: str = "label", names=None):
    def convert(i: int, row: Mapping) -> Optional[Example]:
        y = row[label]
        y = names.index(str(y)) if names is not None else int(y)
        return None if y < 0 else Example(id=str(row.get("idx", i)), text=str(row[text]), label=y)
    return convert


def _row_pair(names: Optional[Sequence[str]] = None, a: str = "sentence1", b: str = "sentence2", label: str = "label"):
    def convert(i: int, row: Mapping) -> Optional[Example]:
        y = row[label]
        y = names.index(str(y)) if names is not None and not isinstance(y, int) else int(y)
        return None if y < 0 else Example(id=str(row.get("idx", i)), text=str(row[a]), text_b=str(row[b]), label=y)
    return convert


def _row_squad(i: int, row: Mapping) -> Optional[Example]:
    answers = row["answers"]
    texts, starts = list(answers["text"]), list(answers["answer_start"])
    if not texts:
        return None
    return Example(id=str(row.get("id", i)), text=str(row["context"]), text_b=str(row["question"]),
                   answers=tuple(texts), answer_start=int(starts[0]))


def _row_c3(i: int, row: Mapping) -> Optional[Example]:
    choices = tuple(row["choice"])
    return Example(id=str(row.get("id", i)), text="".join(row["context"]), text_b=str(row["question"]),
                   options=choices, label=choices.index(row["answer"]))


def _row_ccpm(i: int, row: Mapping) -> Optional[Example]:
    return Example(id=str(row.get("id", i)), text=str(row["translation"]), options=tuple(row["choices"]),
                   label=int(row["answer"]))


def _row_keyword(i: int, row: Mapping) -> Optional[Example]:
    text, keyword = str(row["text"]), str(row["keyword"])
    start = text.find(keyword)
    if start < 0:
        return None
    return Example(id=str(row.get("id", i)), text=text, answers=(keyword,), answer_start=start)


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
            for i, row in enumerate(ds[split]):
                ex = self.convert(i, row)
                if ex is not None:
                    out.append(ex)
            return out

        return Pools(train=convert(self.train_split), test=convert(self.test_split))


def _zh(query: str, **kw) -> Template:
    return Template(query=query, option_separator=ZH_SEP, option_suffix=ZH_END, **kw)


TNEWS_CODES = ("100", "101", "102", "103", "104", "106", "107", "108", "109", "110", "112", "113", "114", "115", "116")
TNEWS_WORDS = ("故事", "文化", "娱乐", "体育", "财经", "房产", "汽车", "教育", "科技", "军事", "旅游", "国际", "证券", "农业", "电竞")
NLI_NAMES = ("neutral", "entailment", "contradiction")  # clue cmnli/ocnli ClassLabel order
NLI_WORDS = ("中立", "蕴含", "矛盾")
SAME_WORDS = ("不同", "相同")
CLUE = "CLUE benchmark (Xu et al. 2020), Hub dataset clue/clue"


def _task(name, kind, labels, metric, track, template, source, paper_name, template_from_paper=True):
    return TaskSpec(name=name, kind=kind, labels=tuple(labels), metric=metric, track=track, suite="paper",
                    template=template, source=source, licence="see the dataset's own card",
                    description=f"MP2 Table 3: {paper_name}", paper_name=paper_name,
                    extra={"template_from_paper": template_from_paper})


PAPER_TASKS: List[TaskSpec] = [
    # UNSEEN DATA (MP2 upstream tasks, downstream samples held out of pre-training)
    _task("amazon", "classification", ("非常差", "较差", "一般", "较好", "非常好"), "acc", "unseen-data",
          _zh("打分：评价的是？选项："),
          HubSource(None, None, "train", "test", _row_single(range(5)),
                    "SophonPlus/ChineseNlpCorpus yf_amazon (MP2 Table 8); not on the Hub"), "Amazon"),
    _task("thucnews", "classification", ("体育", "娱乐", "家居", "房产", "教育", "时尚", "时政", "游戏", "科技", "财经"),
          "acc", "unseen-data", _zh("主题识别：新闻的主题是？选项："),
          HubSource(None, None, "train", "test", _row_single(range(10)),
                    "thunlp/THUCTC 10-class subset (MP2 Table 8); not on the Hub"), "THUCNews", False),
    _task("bq", "classification", SAME_WORDS, "acc", "unseen-data",
          _zh("意思判别：两句话的意思是否相同？选项："),
          HubSource("shibing624/nli_zh", "BQ", "train", "validation", _row_pair(),
                    "BQ corpus (Chen et al. 2018) via shibing624/nli_zh"), "BQ", False),
    _task("cmnli", "classification", NLI_WORDS, "acc", "unseen-data",
          _zh("意思判别：两句话的关系是？选项："),
          HubSource("clue/clue", "cmnli", "train", "validation", _row_pair(NLI_NAMES), CLUE, True), "CMNLI"),
    _task("cmrc-2018", "extractive", (), "f1", "unseen-data", _zh("阅读理解：问题的答案是？"),
          HubSource("clue/clue", "cmrc2018", "train", "validation", _row_squad, CLUE, True), "CMRC-2018", False),
    _task("ccpm", "multiple-choice", (), "acc", "unseen-data", _zh("诗句理解：与句子最相近的诗句是？选项："),
          HubSource(None, None, "train", "validation", _row_ccpm,
                    "CCPM (Li et al. 2021), THUNLP; not on the Hub"), "CCPM"),
    _task("cote-mfw", "extractive", (), "f1", "unseen-data", _zh("关键词抽取：评价对象是？"),
          HubSource(None, None, "train", "test", _row_keyword, "COTE-MFW (Li et al. 2018); not on the Hub"),
          "COTE-MFW", False),
    # UNSEEN TASK (held out of pre-training)
    _task("chnsent", "classification", ("负面", "正面"), "acc", "unseen-task", _zh("情感分析：情感是？选项："),
          HubSource("lansinuote/ChnSentiCorp", None, "train", "validation", _row_single(range(2), text="text"),
                    "ChnSentiCorp (SophonPlus/ChineseNlpCorpus) via lansinuote/ChnSentiCorp", True), "ChnSent"),
    _task("tnews", "classification", TNEWS_WORDS, "acc", "unseen-task", _zh("主题识别：主题是？选项："),
          HubSource("clue/clue", "tnews", "train", "validation", _row_single(range(15), names=TNEWS_CODES),
                    CLUE, True), "TNews"),
    _task("ocnli", "classification", NLI_WORDS, "acc", "unseen-task", _zh("意思判别：两句话的关系是？选项："),
          HubSource("clue/clue", "ocnli", "train", "validation", _row_pair(NLI_NAMES), CLUE, True), "OCNLI"),
    _task("lcqmc", "classification", SAME_WORDS, "acc", "unseen-task", _zh("意思判别：两句话的意思是否相同？选项："),
          HubSource("shibing624/nli_zh", "LCQMC", "train", "validation", _row_pair(),
                    "LCQMC (Liu et al. 2018) via shibing624/nli_zh"), "LCQMC", False),
    _task("drcd", "extractive", (), "f1", "unseen-task", _zh("阅读理解：问题的答案是？"),
          HubSource("clue/clue", "drcd", "train", "validation", _row_squad, CLUE, True), "DRCD", False),
    _task("c3", "multiple-choice", (), "acc", "unseen-task", _zh("阅读选择：问题的答案是？选项：", pair_join="文档：{a}，问题：{b}"),
          HubSource("clue/clue", "c3", "train", "validation", _row_c3, CLUE, True), "C3"),
    _task("cote-bd", "extractive", (), "f1", "unseen-task", _zh("关键词抽取：评价对象是？"),
          HubSource(None, None, "train", "test", _row_keyword, "COTE-BD (Li et al. 2018); not on the Hub"),
          "COTE-BD", False),
]
