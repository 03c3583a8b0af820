"""Replacing a moto method once per process, so a second ``install()`` is a no-op."""

from __future__ import annotations

from typing import Any, Callable

_MARK = "forensics_patched"


def patch_once(cls: type, name: str, make: Callable[[Any], Callable]) -> None:
    """Set ``cls.name`` to ``make(original)`` (``original``: the method it replaces, ``None`` where moto
    has none), unless a previous call did already."""
    original = getattr(cls, name, None)
    if getattr(original, _MARK, False):
        return
    replacement = make(original)
    setattr(replacement, _MARK, True)
    setattr(cls, name, replacement)


def serve(response_cls: type, action: str, handler: Callable) -> None:
    """Answer ``action`` (moto's snake_case method on ``response_cls``) with ``handler(self)``: for the
    APIs moto does not implement."""
    patch_once(response_cls, action, lambda _original: handler)
