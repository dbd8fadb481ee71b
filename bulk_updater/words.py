"""How a count reads in a message: `1 row`, `2 rows`, never `1 rows`."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`count` and the noun, singular for exactly one (`plural`: when not the noun plus `s`)."""
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {plural or noun + 's'}"


__all__ = ["counted"]
