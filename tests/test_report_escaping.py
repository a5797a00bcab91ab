"""Markdown and HTML reports escape every user string: experiment, hypothesis, treatment and
metric names (which may hold ``<``, ``>``, ``&``, ``|``, backticks, ``*`` and ``_``),
verifier names, messages and notes (free text). A name cannot inject HTML or break the
Markdown table; a message stays verbatim in a code block it cannot close.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from _support import chunks, with_and_without_workers

pytestmark = pytest.mark.usefixtures("private_cache_key")

EXPERIMENT = "e<b>x&|`y`"
HYPOTHESIS = "h<script>*y*"
TREATMENT = "a|b<i>"
METRIC = "m|<b>&`x`"
TEST = "<b>x</b> ```check```"
NOTE = "note <b>x</b> | `a` & *b* _c_"
ESCAPING = f"""
from pytest_crystallize import (
    Experiment, data_source, hypothesis, pipeline_step, treatment, verifier,
)


@data_source
def noise(ctx):
    return float(ctx.rng.normal(0.0, 1.0))


@pipeline_step()
def shift(value, ctx, *, delta=0.0):
    return value + delta, {{{METRIC!r}: value + delta}}


@verifier
def judge(baseline, treatment, alpha=0.05):
    return {{"p_value": 0.5, "significant": False, "test": {TEST!r}, "warnings": [{NOTE!r}]}}


@hypothesis(verifier=judge(), metrics={METRIC!r}, name={HYPOTHESIS!r})
def ranker(result):
    return result["p_value"]


escaping = (
    Experiment.builder({EXPERIMENT!r})
    .datasource(noise())
    .add_step(shift())
    .treatments([treatment({TREATMENT!r}, {{"delta": 1.0}})])
    .hypotheses([ranker])
    .replicates(3)
    .build()
)
"""


class Tags(HTMLParser):
    """The start tags of a document and the text of each table cell."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.cells: list[str] = []
        self.titles: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.titles += [v for k, v in attrs if k == "title" and v]
        if tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.cells.append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


HTML_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "section"}
HTML_TAGS |= {"figure", "figcaption", "svg", "line", "text", "circle", "table", "tr", "th", "td"}
HTML_TAGS |= {"thead", "tbody", "span", "path", "details", "summary", "div"}


@with_and_without_workers
def test_markdown_and_html_escape_names_messages_and_notes(
    ourtester: pytest.Pytester, dist: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)  # the outer run's is not ours
    ourtester.makepyfile(experiment_escaping=ESCAPING)
    result = ourtester.runpytest(
        "--crystallize", "--crystallize-md", "s.md", "--crystallize-html", "r.html", *dist
    )
    result.assert_outcomes(passed=2 * chunks(dist, 3), failed=1)  # the verdict fails
    text = (ourtester.path / "s.md").read_text(encoding="utf-8")
    nodeid = f"experiment_escaping.py::{EXPERIMENT}::{HYPOTHESIS}::{TREATMENT}"
    names = ["e&lt;b&gt;x&amp;\\|\\`y\\`", "h&lt;script&gt;\\*y\\*", "a\\|b&lt;i&gt;"]
    escaped_id = "::".join(["experiment_escaping.py", *names])

    # the table keeps its eight columns; every cell shows the name, nothing becomes HTML
    (row,) = [line for line in text.splitlines() if line.startswith("| e&lt;")]
    cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]]
    assert len(cells) == 8
    assert cells[:4] == [*names, "m\\|&lt;b&gt;&amp;\\`x\\`"]
    assert cells[7] == "❌ failed"
    assert f"- {escaped_id}: note &lt;b&gt;x&lt;/b&gt; \\| \\`a\\` &amp; \\*b\\* \\_c\\_" in text
    # the message is verbatim in a code block whose fence its ``` cannot close
    assert f"- **{escaped_id}** (failed):\n\n  ````\n  hypothesis {HYPOTHESIS!r}, " in text
    assert text.count("\n  ````") == 2
    block = re.search(r"\n  ````\n(.*?)\n  ````", text, flags=re.S)
    assert block is not None
    assert f"{TEST} did not pass" in block[1]
    assert f"\n    note: {NOTE}" in block[1]
    outside_code = re.sub(r"\n  ````\n.*?\n  ````", "", text, flags=re.S)
    assert "<" not in outside_code
    assert nodeid not in text

    parser = Tags()
    parser.feed((ourtester.path / "r.html").read_text(encoding="utf-8"))
    assert parser.tags <= HTML_TAGS  # no <b>, <i> or <script> from a name or a message
    assert parser.cells[1:5] == [EXPERIMENT, HYPOTHESIS, TREATMENT, METRIC]
    assert TEST in parser.cells[-1]  # the reason, written out under the verdict's row
    assert NOTE in parser.cells[-1]
    html_text = (ourtester.path / "r.html").read_text(encoding="utf-8")
    assert "<h2>e&lt;b&gt;x&amp;|`y`</h2>" in html_text
    assert "m|&lt;b&gt;&amp;`x` per replicate" in html_text
