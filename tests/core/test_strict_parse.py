"""Every CBOR tag is refused by every strict parse (docs/protocol.md section 1.3, step 2).

cbor2 has no "refuse tags" switch: ``encoding`` gives it a semantic-decoder table whose every
lookup is a refusal, consulted before cbor2's own decoders, plus a tag hook for the rest. This
checks that arrangement against the installed cbor2: every tag it decodes itself, a spread of
others, at the top level and nested, in each entry point.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cbor2
import pytest

from willow_core.encoding import PARSE_ERRORS, decode, decode_parts, parse_strict
from willow_core.errors import DecodeError

#: cbor2's built-in semantic decoders, then others (unassigned, large, the largest)
TAGS = [
    *(0, 1, 2, 3, 4, 5, 21, 22, 23, 24, 25, 28, 29, 30, 32, 33, 34, 35, 36, 37, 52, 54, 55),
    *(100, 256, 258, 260, 261, 1004, 43000, 55799),
    *(6, 99, 1000, 65535, 65536, 2**32, 2**63, 2**64 - 1),
]
VALUES: list[Any] = [0, 1, b"\x01\x02", b"\x7f\x00\x00\x01", "x", "2020-01-01T00:00:00Z", [1, 2]]


def _strict(data: bytes) -> Any:
    try:
        return parse_strict(data)
    except PARSE_ERRORS as exc:
        raise DecodeError(str(exc)) from None


PARSERS: dict[str, Callable[[bytes], Any]] = {
    "decode": lambda data: decode(data, max_bytes=1 << 16),
    "decode_parts": lambda data: decode_parts(data, max_bytes=1 << 16),
    "parse_strict": _strict,
}


@pytest.mark.parametrize("parser", sorted(PARSERS))
@pytest.mark.parametrize("tag", TAGS)
def test_every_tag_is_refused(parser: str, tag: int) -> None:
    parse = PARSERS[parser]
    for value in VALUES:
        for item in (cbor2.CBORTag(tag, value), [1, cbor2.CBORTag(tag, value)]):
            with pytest.raises(DecodeError):
                parse(cbor2.dumps(item))


def test_untagged_values_still_parse() -> None:
    for parse in PARSERS.values():
        assert parse(cbor2.dumps([1, b"\x01", "x", None, True])) == [1, b"\x01", "x", None, True]
