"""environment.yml, the jobs' environment under `snakemake --use-conda`: correct by
construction, as no conda can run here (docs/getting-started.md, "Conda")."""

import re

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from conftest import REPO

tomllib = pytest.importorskip("tomllib")  # Python 3.11+


def environment() -> dict:
    return yaml.safe_load((REPO / "environment.yml").read_text(encoding="utf-8"))


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def pip_section(env: dict) -> list:
    sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    assert len(sections) == 1, sections
    return sections[0]


def test_the_environment_installs_pyprojects_dependencies_and_nothing_local():
    """Snakemake copies environment.yml into .snakemake/conda/ and conda runs its pip section
    from there: a local install (`-e .`, a path) would find no project. Each line is a
    registry requirement, the same as pyproject.toml's (so the two cannot drift)."""
    pip = pip_section(environment())
    for line in pip:
        requirement = Requirement(line)  # `-e .` or a bare path is no requirement: InvalidRequirement
        assert requirement.url is None, line
    assert pip == pyproject()["dependencies"]


def test_the_environments_python_is_one_the_package_supports():
    pinned = [d for d in environment()["dependencies"] if isinstance(d, str) and d.startswith("python")]
    assert len(pinned) == 1 and "pip" in environment()["dependencies"]
    version = re.fullmatch(r"python=(\d+\.\d+)", pinned[0]).group(1)
    assert SpecifierSet(pyproject()["requires-python"]).contains(f"{version}.0")


def shell_commands(text: str) -> list:
    """The shell commands of a rules file, each the concatenation of its string literals."""
    commands = []
    for part in text.split("shell:")[1:]:
        literals = []
        for line in part.lstrip("\n").splitlines():
            literal = re.fullmatch(r'\s*"(.*)",?\s*', line)
            if not literal:
                break
            literals.append(literal.group(1))
        commands.append("".join(literals))
    return commands


# rules that need no package, only the shell's own tools (figure_copy: a figure into figures/)
PLAIN_SHELL = {"cp"}


def test_every_rule_runs_the_package_as_python_m():
    """The environment holds the dependencies, not this package: a job imports it from the
    working directory, which `python -m` puts first on sys.path (Snakemake also drops
    PYTHONPATH in conda jobs). A console-script call (`replicate train ...`) would find nothing."""
    commands = [c for smk in sorted((REPO / "rules").glob("*.smk")) for c in shell_commands(smk.read_text("utf-8"))]
    assert len(commands) >= 10
    for command in commands:
        calls = re.findall(r"\S*\s*\S*\s*\breplicate [a-z]", command)  # the word before, `-m`, the subcommand
        if command.split()[0] in PLAIN_SHELL and not calls:  # a plain tool's command calling no replicate
            continue
        assert calls and all(call.startswith("python -m replicate ") for call in calls), command


def test_every_shell_rule_names_the_environment():
    """`snakemake --use-conda` runs a rule in environment.yml only where the rule names it
    (`conda:`); one without would run in whatever environment Snakemake itself runs in."""
    blocks = [(smk.name, block) for smk in sorted((REPO / "rules").glob("*.smk"))
              for block in re.split(r"^\s*rule\b", smk.read_text("utf-8"), flags=re.M)[1:] if "shell:" in block]
    assert len(blocks) >= 10
    for smk, block in blocks:
        assert re.search(r'^\s*conda:\s*\n\s*"\.\./environment\.yml"', block, re.M), f"{smk}: rule{block[:60]}"
