"""ATTEMPT's task suite (AkariAsai/ATTEMPT), which MPT (Wang et al. 2023) and ComPT
(Pouramini & Faili; puraminy/ComPT, an ATTEMPT fork) use, as registered tasks of suite "paper".

Citations: ``A:<line>`` is ``attempt/data/tasks.py`` at AkariAsai/ATTEMPT HEAD,
``C:<line>`` is ``compt/data/tasks.py`` at puraminy/ComPT HEAD (commit 4b99900).

Where everything comes from
---------------------------
* Names are the published tables' (``replicate/published/data/mpt_table*.csv``,
  ``compt_table*.csv``). One clash: MP2's upstream ``paws`` (Chinese PAWS-X, track
  "upstream", ``paper_upstream.py``) owns the name, so the English PAWS (labeled_final)
  of MPT Table 2 and ComPT Table 2 is ``paws-en`` with ``paper_name="paws"``.
* Hub datasets and the splits ATTEMPT loads: each row's ``attempt_id`` is the id ATTEMPT
  passes to ``datasets.load_dataset`` (cited); ``hub`` is today's namespaced copy of it
  (unchecked from this machine: ``verified_hub_id=False``).
* ``splits``: the Hub split names behind the three raw pools (train, dev, test):
  ATTEMPT's ``split_to_data_split`` (A:27-28 and each class). ``attempt_split`` says how
  ATTEMPT's ``AbstractTask.get`` (A:97-141, with ``split_validation_test`` true in its
  configs) turns them into train/dev/test: "small" (``small_datasets_without_all_splits``,
  A:29-31: the validation split is halved into dev and test), "large"
  (``large_data_without_all_splits``, A:32-33: 1,000 training rows are the dev set, the
  validation split is the test set), "given" (in neither list, e.g. MNLI and PAWS: the
  mapped Hub splits as they are). ``replicate.splits`` implements the draws.
* Formats (``TextFormat``): ATTEMPT's source is ``<task name> <words...>`` (its
  ``seq2seq_format`` prefixes ``self.name`` when ``add_prefix``, A:44-54, and
  ``run_seq2seq.py:264`` sets ``add_prefix`` unless adapters are trained), targets are the
  label index as a digit (``str(example['label'])``). ComPT's source is
  ``src-<task>: <words...>`` (``seq2seq_format`` C:532-561 with ``add_prefix`` true in
  ``configs/crosspt/*.json``; the prefix is the config's task name,
  ``run_seq2seq.py:872-882``), targets its ``labels_map["map"]`` words (cited per task; a
  task without a map keeps the digits, C:544-557). Not modelled: ComPT's character cut
  of the joined source (``src[:511 - len(tgt) - prompt_len]``, C:567-576) and the prompt
  placeholders its template "0-ptar" appends after the source (C:360-429).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from ..errors import DataError
from .base import Example, Pools, TaskSpec, Template, TextFormat
from .paper import _label_index

ATTEMPT_SPLITS = ("small", "large", "given")


# --------------------------------------------------------------------------------------
# Row converters: one per Hub schema. Rows with no gold (-1, the GLUE/SuperGLUE test
# splits; "" in WinoGrande's test split) are dropped; none of the splits loaded here has
# such rows, so positions in a pool are positions in the Hub split (ATTEMPT's
# ``torch.randperm`` indexes rows by position).

def _rid(row: Mapping, i: int, key: str = "idx") -> str:
    value = row.get(key, i)
    return str(i if value is None else value)


def _single(text: str, names: Sequence[str]):
    def convert(i: int, row: Mapping) -> Optional[Example]:
        y = _label_index(row["label"], names, None)
        return None if y < 0 else Example(id=_rid(row, i), text=str(row[text]), label=y)
    return convert


def _pair(a: str, b: str, names: Sequence[str], label: str = "label", id_key: str = "idx"):
    def convert(i: int, row: Mapping) -> Optional[Example]:
        y = _label_index(row[label], names, None)
        return None if y < 0 else Example(id=_rid(row, i, id_key), text=str(row[a]), text_b=str(row[b]), label=y)
    return convert


def _stsb(i: int, row: Mapping) -> Optional[Example]:
    value = float(row["label"])
    if value < 0:
        return None  # GLUE's unlabelled test rows carry -1
    return Example(id=_rid(row, i), text=str(row["sentence1"]), text_b=str(row["sentence2"]), value=value)


def _wic(i: int, row: Mapping) -> Optional[Example]:
    y = _label_index(row["label"], ("False", "True"), None)
    if y < 0:
        return None
    return Example(id=_rid(row, i), text=str(row["sentence1"]), text_b=str(row["sentence2"]), label=y,
                   fields=(("word", str(row["word"])),))


def remove_markup(text: str) -> str:
    """ATTEMPT's MultiRC ``remove_markup`` (A:591-595): <br> becomes a space, <b>/</b> go."""
    text = re.sub("<br>", " ", text)
    return re.sub("<(/)?b>", "", text)


def _multirc(i: int, row: Mapping) -> Optional[Example]:
    """SuperGLUE MultiRC: one row per (paragraph, question, answer option), binary label;
    ``idx`` is the nested {paragraph, question, answer} dict. The id joins the three; the
    question group (ATTEMPT's ``group``, A:598, scored by F1 over all answers) is kept as
    the field ``group``."""
    y = _label_index(row["label"], ("False", "True"), None)
    if y < 0:
        return None
    idx = row["idx"]
    return Example(id=f"{idx['paragraph']}-{idx['question']}-{idx['answer']}", text=str(row["paragraph"]),
                   text_b=str(row["question"]), label=y,
                   fields=(("answer", str(row["answer"])),
                           ("group", f"{idx['paragraph']}-{idx['question']}"),
                           ("question_t5", remove_markup(str(row["question"]))),
                           ("answer_t5", remove_markup(str(row["answer"]))),
                           ("paragraph_t5", remove_markup(str(row["paragraph"])))))


def mark_span(text: str, span: str, index: int, mark: str) -> str:
    """ATTEMPT's WSC ``_mark_span`` (A:662-666, T5's): surround the word at token ``index``
    with ``mark``. Like ATTEMPT, the span text is used as a regular expression."""
    pattern = r"^((?:\S+\s){N})(W)".replace("N", str(index)).replace("W", span)
    return re.sub(pattern, r"\1{0} \2 {0}".format(mark), text)


def _wsc(i: int, row: Mapping) -> Optional[Example]:
    """SuperGLUE WSC (wsc.fixed). The field ``marked`` is ATTEMPT's text with ``*`` around
    span 1 and ``#`` around span 2 (A:668-677, including its index shift by 2)."""
    y = _label_index(row["label"], ("False", "True"), None)
    if y < 0:
        return None
    text = str(row["text"])
    s1, s2 = int(row["span1_index"]), int(row["span2_index"])
    marked = mark_span(text, str(row["span1_text"]), s1, "*")
    marked = mark_span(marked, str(row["span2_text"]), s2 + 2 * int(s1 < s2), "#")
    return Example(id=_rid(row, i), text=text, text_b=str(row["span2_text"]), label=y,
                   fields=(("span1", str(row["span1_text"])), ("span2", str(row["span2_text"])), ("marked", marked)))


def _record(i: int, row: Mapping) -> Optional[Example]:
    """SuperGLUE ReCoRD: passage, cloze query with @placeholder, candidate entities, gold
    answers; ``idx`` is {passage, query}. ATTEMPT rewrites the passage's highlights
    (A:724-727) and lists the entities joined by ", " (A:728); both are kept as fields.
    ATTEMPT makes one training example per answer (A:732-739); here one example carries all
    answers (the target is the first; scoring takes the best over ``answers``)."""
    answers = tuple(str(a) for a in row["answers"])
    if not answers:
        return None  # the test split has none
    passage = str(row["passage"])
    highlights = re.sub(r"\n@highlight\n", ". ", re.sub(r"(\.|\?|\!|\"|\')\n@highlight\n", r"\1 ", passage))
    idx = row["idx"]
    start = passage.find(answers[0])
    return Example(id=f"{idx['passage']}-{idx['query']}", text=passage, text_b=str(row["query"]), answers=answers,
                   answer_start=start if start >= 0 else None,
                   fields=(("query", str(row["query"])), ("entities", ", ".join(str(e) for e in row["entities"])),
                           ("passage_t5", highlights)))


def _squad(i: int, row: Mapping) -> Optional[Example]:
    answers = row["answers"]
    texts = [str(t) for t in answers["text"]]
    if not texts:
        return None
    return Example(id=_rid(row, i, "id"), text=str(row["context"]), text_b=str(row["question"]),
                   answers=tuple(texts), answer_start=int(answers["answer_start"][0]))


def _mrqa(subset: str):
    """MRQA 2019 shared task (``mrqa-workshop/mrqa``): one file for all subsets, a ``subset``
    column; ``answers`` is a list of strings, ``qid`` the id, ``detected_answers`` the
    char spans of each answer in the context."""
    def convert(i: int, row: Mapping) -> Optional[Example]:
        if row["subset"] != subset or not row["answers"]:
            return None
        spans = row.get("detected_answers") or {}
        starts = [s["start"][0] if isinstance(s.get("start"), list) else s.get("start")
                  for s in (spans.get("char_spans") or [])]
        start = starts[0] if starts and starts[0] is not None else str(row["context"]).find(str(row["answers"][0]))
        return Example(id=str(row["qid"]), text=str(row["context"]), text_b=str(row["question"]),
                       answers=tuple(str(a) for a in row["answers"]),
                       answer_start=int(start) if start is not None and int(start) >= 0 else None)
    return convert


def _winogrande(i: int, row: Mapping) -> Optional[Example]:
    """WinoGrande: answer "1"/"2" (empty on the test split) -> label 0/1 (A:763)."""
    if str(row["answer"]) not in ("1", "2"):
        return None
    return Example(id=_rid(row, i), text=str(row["sentence"]), label=int(row["answer"]) - 1,
                   fields=(("option1", str(row["option1"])), ("option2", str(row["option2"]))))


def _scitail(i: int, row: Mapping) -> Optional[Example]:
    """SciTail snli_format: ``gold_label`` "entailment"/"neutral" -> 0/1 (A:247)."""
    y = _label_index(row["gold_label"], ("entailment", "neutral"), None)
    return None if y < 0 else Example(id=_rid(row, i), text=str(row["sentence1"]), text_b=str(row["sentence2"]),
                                      label=y)


def _choices(question: str):
    """CommonsenseQA, OpenBookQA, ARC: a question, its choices {label, text}, and
    ``answerKey``, one of the choice labels (A-E; some ARC rows number them 1-4); the label
    is the key's position among the choices (ATTEMPT's CommonsenseQA: A -> "0", ...,
    A:208-211). Fields ``choice1`` ... (ATTEMPT's words) and ``choices``, all of them as
    "choice1: ... choice2: ..." (ARC has 3 to 5). Rows whose key is not a choice label (the
    unlabelled test split: "") are dropped."""
    def convert(i: int, row: Mapping) -> Optional[Example]:
        labels = [str(x) for x in row["choices"]["label"]]
        texts = [str(x) for x in row["choices"]["text"]]
        key = str(row["answerKey"])
        if key not in labels:
            return None
        named = tuple((f"choice{k + 1}", t) for k, t in enumerate(texts))
        return Example(id=_rid(row, i, "id"), text=str(row[question]), label=labels.index(key),
                       fields=named + (("choices", " ".join(f"{k}: {t}" for k, t in named)),))
    return convert


# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class T2TSource:
    """A Hub dataset whose raw pools are three named splits (``splits``: train, dev, test;
    dev None where ATTEMPT makes its dev set itself). ``data_files`` (config
    ``paper_data_files``) maps the Hub split names to local JSON-lines/CSV files with the
    Hub's schema."""

    path: str
    name: Optional[str]
    splits: Tuple[str, Optional[str], str]
    convert: Callable
    provenance: str
    verified_hub_id: bool = False
    data_files: Dict[str, str] = field(default_factory=dict)

    fetched_files = ()

    def with_files(self, files: Mapping[str, str]) -> "T2TSource":
        return T2TSource(self.path, self.name, self.splits, self.convert, self.provenance, self.verified_hub_id,
                         dict(files))

    def hub_splits(self) -> List[str]:
        """The Hub split names the pools read: a pool named ``"a+b"`` is the rows of split a,
        then those of split b (ANLI's three rounds)."""
        return sorted({part for s in self.splits if s is not None for part in s.split("+")})

    def check(self, data_dir: str) -> None:
        import os

        need = set(self.hub_splits())
        if self.data_files:
            missing = need - set(self.data_files)
            if missing:
                raise DataError(f"paper_data_files: {self.provenance}: no file for split(s) {sorted(missing)}")
        for split, path in self.data_files.items():
            if not os.path.exists(path):
                raise DataError(f"missing data file {path} (paper_data_files, split {split})")

    def load(self, data_dir: str) -> Pools:
        import datasets  # the job's work, never the DAG's

        self.check(data_dir)
        need = self.hub_splits()
        if self.data_files:
            files = {s: self.data_files[s] for s in need}
            fmt = "csv" if next(iter(files.values())).endswith(".csv") else "json"
            ds = datasets.load_dataset(fmt, data_files=files)
        else:
            ds = datasets.load_dataset(self.path, self.name)

        def convert(split: str) -> List[Example]:
            return [ex for part in split.split("+") for i, row in enumerate(ds[part])
                    for ex in [self.convert(i, row)] if ex is not None]

        train, dev, test = self.splits
        return Pools(train=convert(train), test=convert(test), dev=convert(dev) if dev else None)


# --------------------------------------------------------------------------------------
# The table: one row per task.

BIN = ("0", "1")
TRI = ("0", "1", "2")
NO_YES = ("False", "True")


@dataclass(frozen=True)
class Row:
    name: str
    kind: str
    labels: Tuple[str, ...]
    metric: str
    hub: Tuple[str, Optional[str]]
    attempt_id: str            # the id (and config) ATTEMPT loads, with its line
    splits: Tuple[str, Optional[str], str]
    attempt_split: str
    convert: Callable
    template: str
    attempt: TextFormat
    compt: Optional[TextFormat] = None
    group: str = ""
    paper_name: str = ""
    description: str = ""
    track: str = "unseen-task"  # "source": MPT's source tasks (§4.1, §4.3), pre-training data too (TaskSpec.track)


def _attempt(prefix: str, words: str, targets=BIN, **kw) -> TextFormat:
    return TextFormat(input=words, targets=targets, prefix=prefix, **kw)


def _compt(task: str, words: str, targets=BIN, **kw) -> TextFormat:
    return TextFormat(input=words, targets=targets, prefix=f"src-{task}:", **kw)


STSB_ATTEMPT = dict(rounding="attempt")  # str(round_stsb_target(label)), A:362, data/utils.py:4-17
QA_WORDS = "question: {b} context: {a}"   # Squad.preprocessor, A:151-158, pad_punctuation on all three
PAIR_T = 'Is "{a}" related to "{b}"? Options: '
MRQA_NOTE = ("ATTEMPT maps it to its Squad class (A:810-814), whose load_dataset ignores the "
             "name and loads 'squad' unless a data file is given: its MRQA files are not released")

ROWS: Tuple[Row, ...] = (
    # GLUE -------------------------------------------------------------------------------
    Row("mnli", "classification", ("entailment", "neutral", "contradiction"), "acc", ("nyu-mll/glue", "mnli"),
        "glue/mnli A:396", ("train", "validation_mismatched", "validation_matched"), "given", _pair(
            "premise", "hypothesis", ("entailment", "neutral", "contradiction")),
        'Premise: "{a}" Hypothesis: "{b}" Relation? Options: ',
        _attempt("mnli", "premise: {a} hypothesis: {b}", TRI),                       # A:386-402
        _compt("mnli", "sentence1: {a} sentence2: {b}", ("entailment", "neutral", "contradiction")),  # C:1201-1225
        "GLUE", track="source"),
    Row("qqp", "classification", ("not_duplicate", "duplicate"), "acc", ("nyu-mll/glue", "qqp"), "glue/qqp A:376",
        ("train", None, "validation"), "large", _pair("question1", "question2", ("not_duplicate", "duplicate")),
        PAIR_T, _attempt("qqp", "question1: {a} question2: {b}"),                   # A:366-383
        _compt("qqp", "sentence1: {a} sentence2: {b}", ("not_duplicate", "duplicate")), "GLUE",  # C:1172-1198
        track="source"),
    Row("qnli", "classification", ("entailment", "not_entailment"), "acc", ("nyu-mll/glue", "qnli"),
        "glue/qnli A:453", ("train", None, "validation"), "large",
        _pair("question", "sentence", ("entailment", "not_entailment")), PAIR_T,
        _attempt("qnli", "question: {a} sentence: {b}"),                            # A:443-459
        _compt("qnli", "sentence1: {a:.100} sentence2: {b:.350}", ("entailment", "not_entailment")),  # C:1315-1337
        "GLUE", track="source"),
    Row("sst-2", "classification", ("negative", "positive"), "acc", ("nyu-mll/glue", "sst2"), "glue/sst2 A:302",
        ("train", None, "validation"), "large", _single("sentence", ("negative", "positive")),
        'Sentiment of "{a}"? Options: ', _attempt("sst2", "sentence: {a}"),          # A:292-308
        _compt("sst2", "sentence1: {a}", ("negative", "positive")), "GLUE", track="source"),  # C:823-846
    Row("sts-b", "regression", (), "pearson", ("nyu-mll/glue", "stsb"), "glue/stsb A:356",
        ("train", None, "validation"), "small", _stsb, 'How similar are "{a}" and "{b}"? ',
        _attempt("stsb", "sentence1: {a} sentence2: {b}", (), **STSB_ATTEMPT),       # A:345-363
        _compt("stsb", "sentence1: {a} sentence2: {b}", (), **STSB_ATTEMPT), "GLUE"),  # C:883-902, no map
    Row("mrpc", "classification", ("not_equivalent", "equivalent"), "acc", ("nyu-mll/glue", "mrpc"),
        "glue/mrpc A:264", ("train", None, "validation"), "small",
        _pair("sentence1", "sentence2", ("not_equivalent", "equivalent")), PAIR_T,
        _attempt("mrpc", "sentence1: {a} sentence2: {b}"),                          # A:254-270
        _compt("mrpc", "sentence1: {a} sentence2: {b}", ("not_equivalent", "equivalent")), "GLUE"),  # C:734-756
    Row("rte", "classification", ("entailment", "not_entailment"), "acc", ("nyu-mll/glue", "rte"), "glue/rte A:472",
        ("train", None, "validation"), "small", _pair("sentence1", "sentence2", ("entailment", "not_entailment")),
        PAIR_T, _attempt("rte", "sentence1: {a} sentence2: {b}"),                   # A:462-479
        _compt("rte", "sentence1: {a} sentence2: {b}", ("entailment", "not_entailment")), "GLUE"),  # C:1340-1361
    Row("cola", "classification", ("unacceptable", "acceptable"), "mcc", ("nyu-mll/glue", "cola"), "glue/cola A:283",
        ("train", None, "validation"), "small", _single("sentence", ("unacceptable", "acceptable")),
        'Is "{a}" acceptable? Options: ', _attempt("cola", "sentence: {a}"),         # A:273-289
        _compt("cola", "sentence1: {a}", ("unacceptable", "acceptable")), "GLUE"),  # C:759-777
    # SuperGLUE --------------------------------------------------------------------------
    Row("multirc", "classification", NO_YES, "f1", ("aps/super_glue", "multirc"), "super_glue/multirc A:589",
        ("train", None, "validation"), "small", _multirc, 'Question: "{b}" Passage: "{a}" Is the answer right? ',
        _attempt("superglue-multirc", "question: {question_t5} answer: {answer_t5} paragraph: {paragraph_t5}"),  # A:578-606
        None, "SuperGLUE"),
    Row("boolq", "classification", NO_YES, "acc", ("aps/super_glue", "boolq"), "super_glue/boolq A:511",
        ("train", None, "validation"), "small", _pair("passage", "question", NO_YES),
        'Passage: "{a}" Question: "{b}" Options: ',
        _attempt("superglue-boolq", "question: {b} passage: {a}"), None, "SuperGLUE"),  # A:501-517
    Row("wic", "classification", NO_YES, "acc", ("aps/super_glue", "wic"), "super_glue/wic A:619",
        ("train", None, "validation"), "small", _wic, 'Same sense in "{a}" and "{b}"? Options: ',
        _attempt("superglue-wic", "sentence1: {a} sentence2: {b} word: {word}"), None, "SuperGLUE"),  # A:609-626
    Row("wsc", "classification", NO_YES, "acc", ("aps/super_glue", "wsc.fixed"), "super_glue/wsc.fixed A:660",
        ("train", None, "validation"), "small", _wsc, 'In "{a}", does "{b}" refer to the marked noun? Options: ',
        _attempt("superglue-wsc.fixed", "text: {marked}"), None, "SuperGLUE"),       # A:629-679
    Row("cb", "classification", ("entailment", "contradiction", "neutral"), "acc", ("aps/super_glue", "cb"),
        "super_glue/cb A:549", ("train", None, "validation"), "small",
        _pair("premise", "hypothesis", ("entailment", "contradiction", "neutral")),
        'Premise: "{a}" Hypothesis: "{b}" Relation? Options: ',
        _attempt("superglue-cb", "premise: {a} hypothesis: {b}", TRI), None, "SuperGLUE"),  # A:539-555
    Row("record", "extractive", (), "f1", ("aps/super_glue", "record"), "super_glue/record A:716",
        ("train", None, "validation"), "large", _record, 'Passage: "{a}" Fill @placeholder in: "{b}"',
        _attempt("superglue-record", "record query: {query} entities: {entities} passage: {passage_t5}", ()),  # A:718-740
        None, "source", track="source"),
    Row("squad", "extractive", (), "f1", ("rajpurkar/squad", None), "squad A:149",
        ("train", None, "validation"), "large", _squad, 'Passage: "{a}" Question: "{b}"',
        _attempt("squad", QA_WORDS, (), pad_punctuation=True), None, "source", track="source"),
    # MRQA -------------------------------------------------------------------------------
    *(Row(name, "extractive", (), "f1", ("mrqa-workshop/mrqa", None), f"{aid} A:810-814 ({MRQA_NOTE})",
          ("train", None, "validation"), "large", _mrqa(subset), 'Passage: "{a}" Question: "{b}"',
          _attempt("squad", QA_WORDS, (), pad_punctuation=True), None, "MRQA")
      for name, aid, subset in (("naturalquestions", "nq", "NaturalQuestionsShort"), ("hotpotqa", "hotpotqa", "HotpotQA"),
                                ("searchqa", "searchqa", "SearchQA"), ("newsqa", "newsqa", "NewsQA"))),
    # Others -----------------------------------------------------------------------------
    Row("winogrande", "classification", ("option1", "option2"), "acc", ("allenai/winogrande", "winogrande_xl"),
        "winogrande/winogrande_xl A:757", ("train", None, "validation"), "large", _winogrande,
        'Fill the blank in "{a}". Options: ',
        # ATTEMPT inserts option1 twice (A:760-762, "option1:" followed by example["option1"]);
        # copied as it is, since its prompts were trained on it.
        _attempt("winogrande", "sentence: {a} option0: {option1} option1: {option1}"), None, "Others",
        track="source"),  # a target (MPT Table 2) and one of Table 7's 12 sources (MPT §4.3)
    Row("yelp-polarity", "classification", ("negative", "positive"), "acc", ("fancyzhx/yelp_polarity", None),
        "yelp_polarity A:320", ("train", None, "test"), "large", _single("text", ("negative", "positive")),
        'Sentiment of "{a}"? Options: ', _attempt("yelp_polarity", "sentence: {a}"),  # A:311-325
        _compt("yelp_polarity", "sentence: {a}"), "Others"),                         # C:849-863, no map: digits
    Row("scitail", "classification", ("entailment", "neutral"), "acc", ("allenai/scitail", "snli_format"),
        "scitail/snli_format A:244", ("train", None, "validation"), "small", _scitail,
        'Premise: "{a}" Hypothesis: "{b}" Entailed? Options: ',
        _attempt("scitail", "premise: {a} hypothesis: {b}"),                        # A:234-251
        _compt("scitail", "premise: {a} hypothesis: {b}"), "Others"),                # C:714-731, no map: digits
    Row("paws-en", "classification", ("not_paraphrase", "paraphrase"), "acc",
        ("google-research-datasets/paws", "labeled_final"), "paws/labeled_final A:777",
        ("train", "validation", "test"), "given", _pair("sentence1", "sentence2", ("0", "1"), id_key="id"),
        PAIR_T, _attempt("paws", "sentence1: {a} sentence2: {b}"),                  # A:767-783
        _compt("paws", "sentence1: {a} sentence2: {b}", ("not_equivalent", "equivalent")), "Others",  # C:1243-1268
        paper_name="paws", description="PAWS (English, labeled_final); 'paws' is MP2's Chinese PAWS-X"),
    # MPT Table 7's added sources (MPT §4.3: "6 additional diverse source tasks"; Winogrande,
    # the sixth, is above). Pre-training data only, never a target of MPT's tables. Only
    # CommonsenseQA is an ATTEMPT class; the others follow its conventions (the task name
    # before "<field>: ..." words, digit targets, A:44-54). Their split rule decides their
    # test pool, which pre-training holds out: ATTEMPT's where it has one, else MPT App. A's
    # ("if the training set is small [<= 10k], we split the original development set").
    Row("agnews", "classification", ("World", "Sports", "Business", "Sci/Tech"), "acc", ("fancyzhx/ag_news", None),
        "ag_news: not an ATTEMPT task (no class in A:786-822); ATTEMPT's conventions, A:44-54",
        ("train", None, "test"), "large", _single("text", ("World", "Sports", "Business", "Sci/Tech")),
        'Topic of "{a}"? Options: ', _attempt("ag_news", "sentence: {a}", ("0", "1", "2", "3")),  # as yelp_polarity, A:311-325
        None, "Table 7 sources", track="source",
        description="AG News topic classification (MPT Table 7's 12 sources)"),
    Row("commonsenseqa", "classification", ("A", "B", "C", "D", "E"), "acc", ("tau/commonsense_qa", None),
        "commonsense_qa A:205-206 (its class maps train and validation only, A:202-203)",
        ("train", None, "validation"), "small", _choices("question"), 'Question: "{a}" Options: ',
        _attempt("commonsense_qa", "question: {a} choice1: {choice1} choice2: {choice2} choice3: {choice3} "
                 "choice4: {choice4} choice5: {choice5}", ("0", "1", "2", "3", "4")),  # A:197-213
        None, "Table 7 sources", track="source", description="CommonsenseQA (MPT Table 7's 12 sources)"),
    Row("openbookqa", "classification", ("A", "B", "C", "D"), "acc", ("allenai/openbookqa", "main"),
        "openbookqa: not an ATTEMPT task; CommonsenseQA's words, A:197-213", ("train", "validation", "test"), "given",
        _choices("question_stem"), 'Question: "{a}" Options: ',
        _attempt("openbookqa", "question: {a} {choices}", ("0", "1", "2", "3")), None, "Table 7 sources",
        track="source", description="OpenBookQA (main) (MPT Table 7's 12 sources)"),
    # "ARC (Clark et al., 2018)" (MPT §4.3) names neither set; the Challenge set is taken here
    Row("arc", "classification", ("A", "B", "C", "D", "E"), "acc", ("allenai/ai2_arc", "ARC-Challenge"),
        "ai2_arc: not an ATTEMPT task; CommonsenseQA's words, A:197-213", ("train", "validation", "test"), "given",
        _choices("question"), 'Question: "{a}" Options: ',
        _attempt("arc", "question: {a} {choices}", ("0", "1", "2", "3", "4")), None, "Table 7 sources",
        track="source", description="ARC-Challenge (MPT Table 7's 12 sources; the paper does not say which set)"),
    # ANLI's three rounds, each pool the rounds' splits one after another; "anli" is in
    # ATTEMPT's large list (A:32-33) but has no class there, so no split rule of ATTEMPT's
    Row("anli", "classification", ("entailment", "neutral", "contradiction"), "acc", ("facebook/anli", None),
        "anli: listed in A:32-33, no class in A:786-822; MNLI's words, A:386-402",
        ("train_r1+train_r2+train_r3", "dev_r1+dev_r2+dev_r3", "test_r1+test_r2+test_r3"), "given",
        _pair("premise", "hypothesis", ("entailment", "neutral", "contradiction"), id_key="uid"),
        'Premise: "{a}" Hypothesis: "{b}" Relation? Options: ',
        _attempt("anli", "premise: {a} hypothesis: {b}", TRI), None, "Table 7 sources", track="source",
        description="Adversarial NLI, rounds 1-3 (MPT Table 7's 12 sources)"),
    # ComPT's extra tasks ----------------------------------------------------------------
    Row("imdb", "classification", ("negative", "positive"), "acc", ("stanfordnlp/imdb", None), "imdb C:791",
        # ComPT's IMDB maps its validation split to "train" (C:784-786): its dev set is drawn
        # from the training rows (the first rows of the same shuffle as the training draw).
        ("train", "train", "test"), "given", _single("text", ("neg", "pos")), 'Sentiment of "{a}"? Options: ',
        _attempt("imdb", "sentence: {a}"),  # not an ATTEMPT task: ComPT's words with ATTEMPT's conventions
        _compt("imdb", "sentence: {a}", ("negative", "positive")), "ComPT"),        # C:779-796
    Row("multinli", "classification", ("entailment", "neutral", "contradiction"), "acc", ("nyu-mll/multi_nli", None),
        "multi_nli A:434, C:1306", ("train", "validation_mismatched", "validation_matched"), "given",
        _pair("premise", "hypothesis", ("entailment", "neutral", "contradiction"), id_key="pairID"),
        'Premise: "{a}" Hypothesis: "{b}" Relation? Options: ',
        _attempt("mnli", "premise: {a} hypothesis: {b}", TRI),                       # A:424-440 (its name is "mnli")
        _compt("multinli", "premise: {a} hypothesis: {b}", ("entailment", "neutral", "contradiction")),  # C:1293-1312
        "ComPT", description="MultiNLI from the multi_nli dataset (ComPT's 'multinli'), the corpus of GLUE's mnli"),
)


# The metrics ATTEMPT averages into ``average_metrics``, its checkpoint selection on dev
# (``attempt/metrics/metrics.py:14-46`` TASK_TO_METRICS, averaged in
# ``third_party/trainers/trainer.py:110-116``); tasks not listed select on their one metric.
# The seq2seq formulation's "average" (``select_metric: average``) is their mean.
ATTEMPT_AVERAGE = {
    "mrpc": ("acc", "f1"), "qqp": ("acc", "f1"), "sts-b": ("pearson", "spearman"), "cb": ("macro_f1", "acc"),
    "multirc": ("f1", "em"), "record": ("f1", "em"), "squad": ("em", "f1"), "naturalquestions": ("em", "f1"),
    "hotpotqa": ("em", "f1"), "searchqa": ("em", "f1"), "newsqa": ("em", "f1"),
}


def _spec(row: Row) -> TaskSpec:
    formats = {"attempt": row.attempt}
    if row.compt is not None:
        formats["compt"] = row.compt
    hub_path, hub_name = row.hub
    return TaskSpec(
        name=row.name, kind=row.kind, labels=row.labels, metric=row.metric, track=row.track, suite="paper",
        template=Template(row.template, truncate="head", option_separator=", "),
        source=T2TSource(hub_path, hub_name, row.splits, row.convert, f"{hub_path} {hub_name or ''} (ATTEMPT: "
                         f"{row.attempt_id})".replace("  ", " ")),
        licence="see the dataset's own card", description=row.description or f"ATTEMPT suite ({row.group}): {row.name}",
        paper_name=row.paper_name or row.name, language="en", formats=formats,
        extra={"attempt_split": row.attempt_split, "attempt_id": row.attempt_id, "group": row.group,
               "average_of": ATTEMPT_AVERAGE.get(row.name, (row.metric,))})


TEXT2TEXT_TASKS: List[TaskSpec] = [_spec(r) for r in ROWS]
