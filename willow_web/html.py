"""HTML building blocks for views: every piece of user text passes through ``esc``.

Views return strings. Attribute values and text both go through ``html.escape`` with
``quote=True``, so neither ``<``, ``&`` nor quotes from names, messages or topics can leave the
text they were put in. Nothing here builds HTML from unescaped input; ``Markup`` marks strings
that are already safe (built by these helpers), so composition never double-escapes.
"""

from __future__ import annotations

import re
from html import escape

__all__ = ["Markup", "esc", "attrs", "tag", "join", "short_hex", "hue_of"]


class Markup(str):
    """A string already safe to insert into HTML."""

    __slots__ = ()


#: Finds a character ``escape(..., quote=True)`` would replace. Most values (ids, class names,
#: labels, most chat text) hold none, and one search costs less than escape's five replaces:
#: views escape tens of thousands of values a second while messages arrive.
_UNSAFE = re.compile("[&<>\"']").search


def esc(value: object) -> Markup:
    """Escape ``value`` for text or a quoted attribute, unless it is already ``Markup``."""
    if isinstance(value, Markup):
        return value
    text = value if type(value) is str else str(value)
    if _UNSAFE(text) is None:
        return Markup(text)
    return Markup(escape(text, quote=True))


#: Keyword name -> attribute name (``class_`` -> ``class``, ``data_id`` -> ``data-id``); the
#: names are the views' own keywords, a small fixed set.
_NAMES: dict[str, str] = {}


def attrs(**values: object) -> Markup:
    """``key="value"`` pairs; ``None``/``False`` drop the attribute, ``True`` writes it bare.

    A trailing underscore is dropped (``class_``) and underscores become dashes (``data_id``).
    """
    out: list[str] = []
    for key, value in values.items():
        if value is None or value is False:
            continue
        name = _NAMES.get(key)
        if name is None:
            name = _NAMES[key] = key.rstrip("_").replace("_", "-")
        out.append(name if value is True else f'{name}="{esc(value)}"')
    return Markup(" ".join(out))


def tag(name: str, body: object = "", **values: object) -> Markup:
    """``<name attrs>body</name>``; ``body`` is escaped unless it is ``Markup``."""
    a = attrs(**values)
    return Markup(f"<{name}{' ' if a else ''}{a}>{esc(body)}</{name}>")


def join(parts: object) -> Markup:
    """Concatenate already-safe fragments (plain strings are escaped)."""
    return Markup("".join(esc(p) for p in parts))  # type: ignore[attr-defined]


def short_hex(key: bytes, n: int = 4) -> str:
    """A short, stable label for a key: the first ``n`` bytes in hex."""
    return key[:n].hex()


def hue_of(key: bytes) -> int:
    """A stable colour hue (0-359) for avatars of people without one."""
    return (key[0] << 8 | key[1]) % 360 if len(key) >= 2 else 200
