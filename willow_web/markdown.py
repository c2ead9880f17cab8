"""The chat dialect of Markdown, rendered to safe HTML.

What people type in Discord: ``**bold**``, ``*italic*``/``_italic_``, ``~~strike~~``,
``||spoiler||``, `` `code` ``, fenced code blocks, ``> quotes``, bare http(s) links, mentions
(``<@hex key>``, written by the composer from ``@name``), custom emoji (``:name:``) and a few
standard shortcodes. The parser works on the raw text and escapes every piece it emits, so no
input can produce a tag, attribute or URL scheme of its own: links are http(s) only and become
``rel="noopener noreferrer"`` anchors.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .html import Markup, esc

__all__ = ["Context", "render", "mentions_of", "SHORTCODES", "MENTION"]

#: Nesting of emphasis inside emphasis; deeper input renders as text (bounded recursion).
MAX_NESTING = 4

#: Standard shortcodes the picker offers and the renderer understands.
SHORTCODES: dict[str, str] = {
    "thumbsup": "👍",
    "heart": "❤️",
    "joy": "😂",
    "smile": "😄",
    "tada": "🎉",
    "fire": "🔥",
    "eyes": "👀",
    "rocket": "🚀",
    "thinking": "🤔",
    "100": "💯",
    "wave": "👋",
    "pray": "🙏",
    "clap": "👏",
    "sob": "😭",
    "check": "✅",
    "x": "❌",
    "star": "⭐",
    "sparkles": "✨",
    "rofl": "🤣",
    "wink": "😉",
}

MENTION = re.compile(r"<@([0-9a-f]{64})>")
_FENCE = re.compile(r"```(?:[a-zA-Z0-9_+-]{1,20}\n)?(.*?)```", re.DOTALL)
_INLINE = re.compile(
    r"(?P<code>`[^`\n]+`)"
    r"|(?P<bold>\*\*(?=\S)(?:.+?)(?<=\S)\*\*)"
    r"|(?P<strike>~~(?=\S)(?:.+?)(?<=\S)~~)"
    r"|(?P<spoiler>\|\|(?=\S)(?:.+?)(?<=\S)\|\|)"
    r"|(?P<em>\*(?=[^\s*])(?:[^*\n]+?)(?<=\S)\*|(?<![\w])_(?=\S)(?:[^_\n]+?)(?<=\S)_(?![\w]))"
    r"|(?P<mention><@[0-9a-f]{64}>)"
    r"|(?P<emoji>:[a-z0-9_]{2,32}:)"
    r"|(?P<link>https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]])"
)


@dataclass(slots=True)
class Context:
    """What rendering needs from the community: names, emoji, who is reading."""

    name_of: Callable[[bytes], str] = lambda key: key[:4].hex()
    #: custom emoji name -> data: URL of its image
    emoji: dict[str, str] = field(default_factory=dict)
    me: bytes = b""


def mentions_of(body: str) -> set[bytes]:
    """The keys a message mentions."""
    return {bytes.fromhex(m) for m in MENTION.findall(body)}


def render(text: str, ctx: Context) -> Markup:
    """Render one message body."""
    out: list[str] = []
    pos = 0
    for block in _FENCE.finditer(text):
        out.append(_blocks(text[pos : block.start()], ctx))
        code = block.group(1).strip("\n")
        out.append(f'<pre class="md-pre"><code>{esc(code)}</code></pre>')
        pos = block.end()
    out.append(_blocks(text[pos:], ctx))
    return Markup("".join(out))


def _blocks(text: str, ctx: Context) -> str:
    if not text:
        return ""
    out: list[str] = []
    quote: list[str] = []
    lines = text.split("\n")
    for line in lines:
        if line.startswith("> ") or line == ">":
            quote.append(line[2:])
            continue
        if quote:
            out.append(f"<blockquote>{'<br>'.join(_inline(q, ctx, 0) for q in quote)}</blockquote>")
            quote = []
        out.append(_inline(line, ctx, 0) + "\n")
    if quote:
        out.append(f"<blockquote>{'<br>'.join(_inline(q, ctx, 0) for q in quote)}</blockquote>")
    joined = "".join(out)
    return joined[:-1] if joined.endswith("\n") else joined


def _inline(text: str, ctx: Context, depth: int) -> str:
    if depth >= MAX_NESTING:
        return esc(text)
    out: list[str] = []
    pos = 0
    for m in _INLINE.finditer(text):
        out.append(esc(text[pos : m.start()]))
        pos = m.end()
        kind, raw = m.lastgroup, m.group(0)
        if kind == "code":
            out.append(f'<code class="md-code">{esc(raw[1:-1])}</code>')
        elif kind == "bold":
            out.append(f"<strong>{_inline(raw[2:-2], ctx, depth + 1)}</strong>")
        elif kind == "strike":
            out.append(f"<s>{_inline(raw[2:-2], ctx, depth + 1)}</s>")
        elif kind == "spoiler":
            inner = _inline(raw[2:-2], ctx, depth + 1)
            out.append(f'<span class="spoiler" tabindex="0">{inner}</span>')
        elif kind == "em":
            out.append(f"<em>{_inline(raw[1:-1], ctx, depth + 1)}</em>")
        elif kind == "mention":
            key = bytes.fromhex(raw[2:-1])
            cls = "mention me" if key == ctx.me else "mention"
            out.append(f'<span class="{cls}">@{esc(ctx.name_of(key))}</span>')
        elif kind == "emoji":
            name = raw[1:-1]
            if name in ctx.emoji:
                out.append(
                    f'<img class="emoji" alt="{esc(raw)}" title="{esc(raw)}" '
                    f'src="{esc(ctx.emoji[name])}">'
                )
            else:
                out.append(SHORTCODES.get(name) or esc(raw))
        else:  # link
            out.append(
                f'<a href="{esc(raw)}" target="_blank" rel="noopener noreferrer">{esc(raw)}</a>'
            )
    out.append(esc(text[pos:]))
    return "".join(out)
