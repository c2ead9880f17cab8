"""The HTML helpers escape exactly as ``html.escape(quote=True)`` does, fast path or not."""

from __future__ import annotations

import html

from hypothesis import given
from hypothesis import strategies as st

from willow_web.html import Markup, attrs, esc


@given(st.text())
def test_esc_is_html_escape(text: str) -> None:
    assert esc(text) == html.escape(text, quote=True)
    assert type(esc(text)) is Markup


@given(st.sampled_from("&<>\"'"), st.text(), st.text())
def test_a_single_unsafe_character_anywhere_is_escaped(bad: str, before: str, after: str) -> None:
    text = before + bad + after
    out = esc(text)
    assert out == html.escape(text, quote=True)
    assert not any(c in out for c in "<>\"'")


def test_non_text_values_and_markup() -> None:
    assert esc(42) == "42"
    assert esc(Markup("<b>kept</b>")) == "<b>kept</b>"


def test_attrs_names_and_values() -> None:
    out = attrs(class_="tool", data_id='x"><script>', aria_label="A & B", hidden=True, title=None)
    assert out == 'class="tool" data-id="x&quot;&gt;&lt;script&gt;" aria-label="A &amp; B" hidden'
    assert attrs(class_="tool") == 'class="tool"'  # the cached name gives the same result
