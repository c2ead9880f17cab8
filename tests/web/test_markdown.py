"""The chat Markdown renderer: formatting people expect, and no way to smuggle markup."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from willow_web.markdown import Context, mentions_of, render


def test_formatting() -> None:
    out = render("**b** *i* ~~s~~ ||sp|| `c<d` :tada:", Context())
    assert "<strong>b</strong>" in out
    assert "<em>i</em>" in out
    assert "<s>s</s>" in out
    assert 'class="spoiler"' in out
    assert '<code class="md-code">c&lt;d</code>' in out
    assert "🎉" in out


def test_code_block_and_quote() -> None:
    out = render("> quoted\n```py\nx < 1 and **no**\n```", Context())
    assert "<blockquote>quoted</blockquote>" in out
    assert "<pre" in out
    assert "x &lt; 1 and **no**" in out


def test_links_are_http_only_and_isolated() -> None:
    out = render("see https://example.org/a?b=1, javascript:alert(1)", Context())
    assert '<a href="https://example.org/a?b=1" target="_blank" rel="noopener noreferrer">' in out
    assert "javascript:alert(1)" in out
    assert 'href="javascript' not in out


def test_mentions_and_custom_emoji() -> None:
    me = bytes(range(32))
    ctx = Context(
        name_of=lambda k: "Alice <3", emoji={"party": "data:image/png;base64,AA=="}, me=me
    )
    out = render(f"hi <@{me.hex()}> :party:", ctx)
    assert '<span class="mention me">@Alice &lt;3</span>' in out
    assert '<img class="emoji" alt=":party:"' in out
    assert mentions_of(f"<@{me.hex()}>") == {me}


@given(st.text(alphabet=st.sampled_from(list("<>&\"'*_~|`:@ ab\n/=")), max_size=200))
def test_no_input_produces_markup_of_its_own(text: str) -> None:
    out = render(text, Context())
    stripped = str(out)
    for allowed in (
        "<strong>",
        "</strong>",
        "<em>",
        "</em>",
        "<s>",
        "</s>",
        "<br>",
        '<span class="spoiler" tabindex="0">',
        "</span>",
        '<code class="md-code">',
        "</code>",
        "<blockquote>",
        "</blockquote>",
        '<pre class="md-pre"><code>',
        "</pre>",
    ):
        stripped = stripped.replace(allowed, "")
    assert "<" not in stripped
    assert '"' not in stripped.replace("&quot;", "")
