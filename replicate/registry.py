"""One registry type for tasks, backbones and methods.

Each entry is registered once, by name, with a single call; lookups of unknown names
raise a ``ConfigError`` listing what exists, so a typo in a config fails in one line.
"""

from __future__ import annotations

from typing import Dict, Generic, Iterator, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: Dict[str, T] = {}

    def register(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def replace(self, name: str, entry: T) -> T:
        """Register ``entry``, in place of the entry of that name if there is one (a task
        declared in YAML, read again from an edited file in the same process)."""
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries))
            raise ConfigError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def names(self) -> list:
        return sorted(self._entries)
