"""Task registry: ``TASKS.get(name)`` returns a ``TaskSpec``.

Adding a task is one ``TASKS.register(spec.name, spec)`` call (see docs/extending.md, "Add a task").
"""

from __future__ import annotations

from typing import Mapping, Optional

from ..registry import Registry
from .base import Example, Pools, TaskSpec, Template  # noqa: F401  (re-exported)
from dataclasses import replace as _replace

from .documents import DOCUMENT_TASKS
from .embedded import EMBEDDED_TASKS
from .paper import PAPER_TASKS
from .paper_upstream import FAMILY_OF_PAPER_UPSTREAM, PAPER_UPSTREAM_TASKS
from .text2text import TEXT2TEXT_TASKS
from .upstream import UPSTREAM_TASKS

TASKS: Registry[TaskSpec] = Registry("task")
for _spec in EMBEDDED_TASKS + UPSTREAM_TASKS + PAPER_TASKS + PAPER_UPSTREAM_TASKS + DOCUMENT_TASKS + TEXT2TEXT_TASKS:
    if not _spec.family and _spec.name in FAMILY_OF_PAPER_UPSTREAM:
        _spec = _replace(_spec, family=FAMILY_OF_PAPER_UPSTREAM[_spec.name])
    TASKS.register(_spec.name, _spec)


def resolve_task(name: str, paper_data_files: Optional[Mapping[str, Mapping[str, str]]] = None) -> TaskSpec:
    """The registered task, with its source pointed at local files when the config names some."""
    spec = TASKS.get(name)
    files = (paper_data_files or {}).get(name)
    if files:
        if not hasattr(spec.source, "with_files"):
            from ..errors import ConfigError
            raise ConfigError(f"paper_data_files: task {name!r} is not a Hub task")
        from dataclasses import replace
        spec = replace(spec, source=spec.source.with_files(files))
    return spec
