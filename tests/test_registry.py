from __future__ import annotations

import pytest

from mmnewsrec.errors import ConfigError
from mmnewsrec.registry import Registry


def test_register_get_and_reject_duplicates() -> None:
    things: Registry[int] = Registry("thing")
    things.register("b")(2)
    things.register("a")(1)
    assert things.get("a") == 1 and things.names() == ["a", "b"] and "b" in things and list(things) == ["a", "b"]
    with pytest.raises(ValueError, match="thing 'a' is already registered"):
        things.register("a")(3)
    with pytest.raises(ConfigError, match=r"unknown thing 'c'; choose one of \['a', 'b'\]"):
        things.get("c")
