"""QR codes for invites, as inline SVG (segno: a pure-Python encoder that runs in Pyodide).

Error correction M and a 4-module quiet zone, dark modules on white, so phone cameras read
the code off a dark-themed screen too.
"""

from __future__ import annotations

import io
from functools import lru_cache

from .html import Markup

__all__ = ["qr_svg", "qr_matrix", "MAX_CACHED_CODES"]


def qr_matrix(text: str) -> list[list[bool]]:
    """The module matrix (for tests that decode or compare)."""
    import segno

    code = segno.make(text, error="m", micro=False)
    return [[bool(v) for v in row] for row in code.matrix]


#: Codes kept: encoding one costs tens of milliseconds in the browser, and an open invite
#: dialog is redrawn whenever anything arrives.
MAX_CACHED_CODES = 16


@lru_cache(maxsize=MAX_CACHED_CODES)
def qr_svg(text: str) -> Markup:
    """An SVG QR code of ``text``; the SVG is produced by the encoder, not from user text."""
    import segno

    code = segno.make(text, error="m", micro=False)
    out = io.BytesIO()
    code.save(
        out, kind="svg", scale=4, border=4, dark="#000", light="#fff", xmldecl=False, svgns=True
    )
    # Whole-pixel modules at their natural size: cameras (and decoders) need sharp edges.
    return Markup(out.getvalue().decode().replace("<svg ", '<svg shape-rendering="crispEdges" ', 1))
