"""Every package the code imports is one pyproject.toml declares (issue 25: numpy and
huggingface_hub were imported directly but came only through transformers)."""

import ast
import importlib.metadata
import re
import sys

import pytest
from packaging.requirements import Requirement  # pytest's own dependency

from conftest import REPO


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_top_level_modules(paths):
    modules = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"replicate", "__future__"}


def test_every_imported_package_is_declared():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {canonical(Requirement(r).name) for r in project["dependencies"]}
    distributions = importlib.metadata.packages_distributions()
    modules = imported_top_level_modules(sorted((REPO / "replicate").rglob("*.py")))
    assert {"numpy", "sklearn", "huggingface_hub", "pandas"} <= modules  # the scan sees the imports in functions
    undeclared = {m: distributions.get(m) for m in modules
                  if not {canonical(d) for d in distributions.get(m, [m])} & declared}
    assert not undeclared, f"imported but not in pyproject's dependencies: {undeclared}"
