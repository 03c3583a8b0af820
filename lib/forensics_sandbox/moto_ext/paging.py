"""One page of a list, as the AWS APIs the sandbox serves page it: the token is the next page's offset."""

from __future__ import annotations

from typing import Any


def paginate(items: list, key: str, size: int, token: str | None = None, *, token_name: str = "NextToken") -> dict:
    """``{key: items[offset:offset + size]}`` from the offset ``token`` names (the start when none),
    with ``token_name`` naming the next page's offset when more items follow (absent on the last page).
    CloudTrail and CloudWatch call the token ``NextToken``, ElastiCache ``Marker``."""
    first = int(token) if token else 0
    out: dict[str, Any] = {key: items[first:first + size]}
    if first + size < len(items):
        out[token_name] = str(first + size)
    return out
