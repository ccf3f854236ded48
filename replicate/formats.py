"""Task formats: how a method lays a task out, on top of the MRC layout of ``replicate.mrc``.

PPT (Gu et al. 2022) groups classification tasks into three formats, each with its own
pattern-verbalizer pair and its own pre-trained prompt (§3.2): sentence-pair
classification (SPC), multiple-choice classification (MCC) and single-sentence
classification (SSC); Unified PPT (§3.3) casts every task as MCC, where the answer is an
option letter (A-P, so at most 16 options). This harness keeps the MRC span head of MP2's
formulation for every method, so a format changes what the options are, never the head:

- ``layout="options"``: the task's own options (label words, or the candidate texts of a
  multiple-choice example) follow the query, and the head picks one (MP2's MRC format; PT,
  P-tuning v2, MP2 and SPoT use it);
- ``layout="mcc"``: the query lists the candidates as "A. <text> B. <text> ...", ends with
  "Answer is", and the options that follow it are the letters themselves: every task shares
  the same 16 label words (PPT's MCC verbalizer, eq 4).

``template="hybrid"`` replaces the task's own template by PPT's hard prompt for its format
(PPT Appendix Table 1): SSC "s . It was <X>.", SPC "Question: s1 ? <X>. s2", MCC "We ask
s_q ? A. s1 ... F. s6 . The answer is <X>."; Chinese tasks take its Chinese prompts
("s。这很<X>。", "问题：s1？<X>。s2", "问题：s_q？一、s1 … 六、s6。答案是：<X>。"). In the MRC layout
the options come after the text, so <X> becomes the options' place at the end (SPC:
"Question: s1 ? s2"). The MCC prompt lists the candidates itself, so a multiple-choice
task under the hybrid template is always lettered, whatever the layout (Hybrid PT and
Hybrid PPT lay it out alike); a task with a question (``{b}``: C3's) keeps it after the
passage, the query PPT §3.2.2 forms by concatenating them. ``template="pretraining"`` lays a
task out in the pattern of its format's pre-training task (PPT eqs 3-4; Appendix B eqs 1-2:
SPC "s1 ? s2", MCC "s_q ? A. s1 ... Answer is"), as PPT §3.2.1 builds the downstream PVPs
and the authors' BoolQ reader does with a pre-trained prompt (``BoolQDatasets.py:22-27``:
prompt, question, the mask, passage, as ``preprocess_pretrain_data_nsp.py:121`` lays out
its pairs); an SPC task's label words must then be its pre-training verbalizer's (PPT
eq 3: "no", "maybe", "yes"; Appendix B eq 1: 矛盾, 中立, 相似).

Every word of these patterns, the option letters (A-P; Chinese 一-十六, Appendix B eq 2)
and the listing ("A. <text>"; "一、<text>") come from one set per language (``WORDINGS``),
chosen by the task's ``language``.
Extractive tasks have no PPT format (PPT cannot cast span extraction as MCC, MP2 §2): every
layout and template leaves them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Dict, Optional, Tuple

from .errors import ConfigError
from .tasks.base import Example, TaskSpec, Template
from .wording import LETTERS, WORDINGS, ZH_LETTERS, Wording  # noqa: F401 (the words of PPT's formats)

LAYOUTS = ("options", "mcc")
TEMPLATES = ("task", "hybrid", "pretraining")
# PPT Appendix Table 1 (English), in the MRC layout (the options follow the text)
HYBRID_TEMPLATES = WORDINGS["en"].hybrid


def ppt_format(task: TaskSpec) -> Optional[str]:
    """PPT's format of a task: "mcc" (multiple choice), "spc" (a classification task over two
    texts: its template has a second text), "ssc" (one text); None for extractive tasks."""
    if task.kind == "extractive":
        return None
    if task.kind == "multiple-choice":
        return "mcc"
    return "spc" if "{b}" in task.template.text else "ssc"


@dataclass(frozen=True)
class LetteredTemplate(Template):
    """A template followed by the candidates as "A. <text> B. <text> ..." and ``suffix``;
    ``labels``: the candidates of a classification task (a multiple-choice example brings
    its own).

    The listing is never cut (``mrc.MRCEncoder``): the query (the inserted ``{a}`` and
    ``{b}``) gives way, and an example whose candidates leave no query token does not fit
    (``mrc.TooLong``). ``limits``: for tasks whose candidates are cut sentences (PPT's
    pre-training tasks), n -> (query tokens, tokens per candidate) of the authors' tables at
    their input length; the encoder cuts each candidate to the same share of the room
    ``max_length`` leaves (``candidate_tokens``)."""

    labels: Tuple[str, ...] = ()
    suffix: str = " Answer is "
    letters: Tuple[str, ...] = tuple(LETTERS)  # (see WORDINGS)
    item: str = "{letter}. {text}"
    joiner: str = " "
    limits: Optional[Dict[int, Tuple[int, int]]] = None

    def fill(self, example: Example) -> Tuple[str, Dict[str, Tuple[int, int]]]:
        """The filled text; spans: the query's fields ("a", "b") and each candidate ("c0", ...)."""
        text, spans = super().fill(example)
        candidates = example.options if example.options is not None else self.labels
        out = text.rstrip() + (" " if self.joiner else "")
        for i, c in enumerate(candidates):
            if i:
                out += self.joiner
            head, _, tail = self.item.partition("{text}")
            out += head.format(letter=self.letters[i])
            spans[f"c{i}"] = (len(out), len(out) + len(c))
            out += c + tail
        return out + self.suffix, spans


def candidate_tokens(limits: Dict[int, Tuple[int, int]], n: int, room: int) -> int:
    """Tokens per candidate of an n-candidate draw when the query and the candidates share
    ``room`` tokens: the authors' split for n (nss_uni.py's ``stat_map[n]``: query q, each
    candidate o tokens), i.e. room * o / (q + n o), rounded down."""
    q, o = limits[n]
    return room * o // (q + n * o)


@dataclass(frozen=True)
class LetteredTask(TaskSpec):
    """A task in the MCC layout: its options are the letters of its candidates."""

    def options_of(self, example: Example) -> Tuple[str, ...]:
        n = len(example.options) if example.options is not None else len(self.labels)
        return tuple(self.template.letters[:n])


def in_format(task: TaskSpec, layout: str = "options", template: str = "task") -> TaskSpec:
    """``task`` as a method with this layout and template sees it (the task itself when both
    are the defaults or the task is extractive). A multiple-choice task under the hybrid or
    pre-training pattern is lettered whatever the layout (the pattern lists its candidates).
    ConfigError for a task with more candidates than the MCC letters, or an SPC task under
    the pre-training pattern whose label words are not its verbalizer's."""
    if layout not in LAYOUTS or template not in TEMPLATES:
        raise ConfigError(f"format: layout must be one of {LAYOUTS} and template one of {TEMPLATES}")
    fmt = ppt_format(task)
    if fmt is None or (layout, template) == ("options", "task"):
        return task
    words = WORDINGS[task.language]
    key = "mcc+b" if fmt == "mcc" and "{b}" in task.template.text else fmt
    text = task.template.text if template == "task" else getattr(words, template)[key]
    if template == "pretraining" and fmt == "spc" and not set(task.labels) <= set(words.spc_labels):
        raise ConfigError(f"task {task.name}: template pretraining needs label words among the SPC pre-training "
                          f"verbalizer's {list(words.spc_labels)} (PPT eq 3; Appendix B eq 1), not "
                          f"{list(task.labels)}")
    if layout == "options" and (fmt != "mcc" or template == "task"):
        base = Template(text, task.template.truncate, task.template.option_separator)
        return _copy(task, TaskSpec, template=base)
    if task.num_labels > len(words.letters):
        raise ConfigError(f"task {task.name}: {task.num_labels} labels; the MCC layout has {len(words.letters)} "
                          "option letters (PPT §3.3)")
    answer = words.hybrid_answer if template == "hybrid" else words.answer
    lettered = LetteredTemplate(text, _head_truncate(task), words.separator, labels=task.labels, suffix=answer,
                                letters=words.letters, item=words.item, joiner=words.joiner,
                                limits=task.extra.get("candidate_limits"))
    return _copy(task, LetteredTask, template=lettered)


def _head_truncate(task: TaskSpec) -> str:
    """The candidates are template words now, never cut; the query keeps its beginning
    unless the task keeps its end."""
    return "tail" if task.template.truncate == "tail" else "head"


def _copy(task: TaskSpec, cls, **changes) -> TaskSpec:
    values = {f.name: getattr(task, f.name) for f in fields(TaskSpec)}
    values.update(changes)
    return cls(**values)
