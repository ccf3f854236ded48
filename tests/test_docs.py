"""The README is a front door and the documentation site builds: `mkdocs build --strict` passes
without a warning (mkdocs.yml makes broken links, anchors and nav entries warnings), every
relative link and image of README.md names a file of the repository (and an existing heading
where it has an anchor), and the README stays short with the two commands on its first screen."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import HANG_GUARD_S

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def test_mkdocs_build_strict_has_no_warning(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"),
         "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=HANG_GUARD_S,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "WARNING" not in output, output
    assert (tmp_path / "site" / "index.html").is_file()
    # docs/report/*.rst are Snakemake report captions (exclude_docs), not part of the site
    assert not (tmp_path / "site" / "report").exists()


def _github_slug(heading: str) -> str:
    """GitHub's anchor of a heading: lowercase, markup dropped, punctuation but '-' and '_'
    dropped, each space a '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text
    text = text.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(markdown: Path) -> set:
    anchors, seen, fence = set(), {}, False
    for line in markdown.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fence = not fence
            continue
        m = None if fence else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            slug = _github_slug(m.group(1))
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def _relative_links(markdown: Path) -> list:
    text = re.sub(r"```.*?```", "", markdown.read_text(encoding="utf-8"), flags=re.S)  # not in code blocks
    text = re.sub(r"`[^`\n]*`", "", text)  # nor in inline code
    targets = re.findall(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", text)
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t, flags=re.I)]  # http:, mailto:, ...


def test_readme_links_point_to_files_and_headings():
    links = _relative_links(README)
    assert links, "README.md has no relative link: the link check would check nothing"
    broken = []
    for link in links:
        path, _, anchor = link.partition("#")
        target = (README.parent / path).resolve() if path else README
        if not target.exists() or ROOT not in (target, *target.parents):
            broken.append(f"{link}: no such file in the repository")
        elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
            broken.append(f"{link}: no heading with anchor #{anchor} in {target.relative_to(ROOT)}")
    assert not broken, "\n".join(broken)


def test_github_slug_rule():
    assert _github_slug("Hard cases, and why") == "hard-cases-and-why"
    assert _github_slug("The text-to-text path (MPT, ComPT)") == "the-text-to-text-path-mpt-compt"
    assert _github_slug("MP2 Table 3 (`make table3`)") == "mp2-table-3-make-table3"
    assert _github_slug("Where the time went, after issue 24's first changes") == (
        "where-the-time-went-after-issue-24s-first-changes")


def test_readme_is_a_front_door():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines (at most 200): move sections into docs/"
    # the two commands as commands (lines of a code block), not only mentioned in a sentence
    first_screen = [line.split("#")[0].strip() for line in lines[:40]]
    for command in ("make table3", "make test"):
        assert command in first_screen, f"`{command}` is not a command line in README.md's first 40 lines"
    assert "docs/showcase.md" in "\n".join(lines), "README.md does not link the showcase (docs/showcase.md)"
