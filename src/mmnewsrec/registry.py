"""A tiny name -> component registry: explicit registration, duplicate names rejected."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from mmnewsrec.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to components (classes or factories) of one kind.

    Example:
        >>> scorers = Registry("scorer")
        >>> @scorers.register("dot")
        ... def dot(a, b): ...
        >>> scorers.get("dot") is dot
        True
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering a component under ``name``; a name may be registered once."""

        def add(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = item
            return item

        return add

    def get(self, name: str) -> T:
        """The component registered as ``name``; an unknown name lists the valid ones."""
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} {name!r}; choose one of {self.names()}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
