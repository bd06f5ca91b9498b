"""Any text the user can type must export (issue 13): hostile notes, names and DIY
functions through the Markdown post (read as CommonMark and as Jekyll's kramdown would
read it), the HTML page, the knowledge graph, the chart pictures, the script and the
panel's state.

kramdown has no Python implementation: its reading is checked structurally (what is
left outside closed fences and code spans holds no `<`, no unescaped `{:` and no link to
a target other than http(s), mailto or a relative one).
"""

from __future__ import annotations

import ast
import io
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from random import Random
from urllib.parse import unquote

import pytest
from conftest import TINY_LAB
from markdown_it import MarkdownIt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import featurelab as fl
from featurelab.export.charts import draw_law
from featurelab.export.html_page import MATHML_ATTRIBUTES, MATHML_TAGS
from featurelab.export.markdown import escape
from featurelab.export.safe_markdown import note_markdown
from featurelab.export.text import plain_texts

TINY = {**TINY_LAB, "optimizer": {"lr": 1e-2, "steps": 30}}
MATH = r"$$\lVert x \rVert = \tfrac{1}{2}$$ and $\lVert y$"  # mathtext knows neither

HOSTILE_NOTES = [
    "[x](javascript:alert(1))",
    "[x][evil]\n\n[evil]: javascript:alert(1)",
    "<javascript:alert(1)>",
    "![x](javascript:alert(1)) ![y](data:image/svg+xml,<svg/onload=alert(1)>)",
    '{: onmouseover="alert(1)"}',
    'Some *text*{: onmouseover="alert(1)"} and `code`{: onclick="alert(1)"}',
    "{::nomarkdown}<script>alert(1)</script>{:/}",
    '{::options parse_block_html="true" /}\n<div markdown="1">*x*</div>',
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<!-- a comment --> <a href='javascript:alert(1)'>x</a>",
    "&lt;script&gt;alert(1)&lt;/script&gt; &#60;img src=x onerror=alert(1)&#62;",
    # a fence CommonMark does not open (a backtick in its info string), so the HTML after
    # it is a paragraph: raw HTML there if the writer took it for code
    "```x`\n<script>alert(1)</script>\n```",
    # an unclosed fence: code to CommonMark, text (with live HTML) to kramdown
    "~~~\n<img src=x onerror=alert(1)>",
    "```\n<b>left open</b>",
    # a fence right under a list item's line: more of the paragraph to kramdown without GFM
    "- item\n  ```\n  <b>code</b>\n  ```",
    "`` ` `` <b>x</b> ` a` and ``a``b`",
    MATH,
    r"$a < b$ and $<script>alert(1)</script>$ and $[x](javascript:alert(1))$",
    "1. one\n2) two\n- [a](javascript:alert(1))\n\n> > <b>deep</b>\n\n| a | <b>b</b> |\n|---|---|\n"
    "| `x|y` | $c|d$ |",
    "a\ud800b\udc00c and a pair \ud83d\ude00 and NUL a\x00b",
    "{{ site.github }} {% include evil.html %}",
    "line one  \nline two\\\n# not a heading?\n=====",
]
HOSTILE_NAMES = [
    MATH,
    "<script>alert(1)</script> {: onclick=\"alert(1)\"} [x](javascript:alert(1))",
    "name\ud800 with NUL\x00",
]
# DIY functions named like what the script itself uses
SHADOWING = ["print", "fl", "range", "__builtins__"]
ALLOWED_TAGS = {"p", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li", "h1", "h2",
                "h3", "h4", "h5", "h6", "a", "img", "table", "thead", "tbody", "tr", "th", "td",
                "hr", "br"}
ALLOWED_ATTRIBUTES = {"href", "src", "alt", "title", "class", "start", "style"}


def allowed_target(url: str) -> bool:
    scheme = re.match(r"[^/?#]*:", url.strip())
    return scheme is None or scheme.group(0)[:-1].lower() in ("http", "https", "mailto")


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def live_html(html: str, tags: frozenset[str] = frozenset(),
              attributes: frozenset[str] = frozenset()) -> list[str]:
    """What in rendered HTML is not plain text and safe links (`tags`, `attributes`: more
    that are allowed)."""
    parser = Tags()
    parser.feed(html)
    problems = []
    for tag, attrs in parser.tags:
        if tag not in ALLOWED_TAGS | tags:
            problems.append(f"<{tag}>")
        problems += [f"<{tag} {a}>" for a in attrs if a not in ALLOWED_ATTRIBUTES | attributes]
        problems += [f"<{tag} {a}={v}>" for a, v in attrs.items()
                     if a in ("href", "src") and not allowed_target(v or "")]
    return problems


def commonmark(markdown: str) -> str:
    """The post as a permissive CommonMark site renders it: raw HTML on, any link."""
    md = MarkdownIt("commonmark", {"html": True}).enable("table")
    md.validateLink = lambda url: True
    return md.render(markdown.split("\n---\n", 1)[1])  # past the front matter


def _unquoted(line: str, depth: int | None = None) -> tuple[int, str]:
    """(how many `>` markers a line starts with, up to `depth`; the rest of it)."""
    count = 0
    while depth is None or count < depth:
        marker = re.match(r"\s{0,3}> ?", line)
        if marker is None:
            break
        line, count = line[marker.end():], count + 1
    return count, line


def kramdown_text(markdown: str) -> str:
    """The post without what kramdown reads as code: fences (after any quote markers and
    list marker) closed, in the same blockquote, by a line of as many fence characters or
    more (an unclosed one is text to kramdown), and code spans (closed at the first run
    of as many backticks)."""
    lines = markdown.split("\n---\n", 1)[1].split("\n")
    out, i = [], 0
    while i < len(lines):
        depth, content = _unquoted(lines[i])
        opened = re.match(r"\s*((?:[-*+]|\d+[.)])\s+)?(`{3,}|~{3,})", content)
        end = None
        # without GFM, kramdown reads a fence right under a line of text as more text
        if opened and (opened.group(1) or i == 0 or not _unquoted(lines[i - 1])[1].strip()):
            run = opened.group(2)
            closing = re.compile(rf"\s*{re.escape(run)}{re.escape(run[0])}*\s*$")
            for j in range(i + 1, len(lines)):
                inside, rest = _unquoted(lines[j], depth)
                if inside < depth:
                    break  # the blockquote ended: so did the fence
                if closing.match(rest):
                    end = j
                    break
        if end is not None:
            i = end + 1
            continue
        out.append(content)
        i += 1
    text = re.sub(r"\\\\", "", "\n".join(out))  # escaped backslashes: what follows is not
    return re.sub(r"(?<!\\)(`+)(.*?)\1", "", text, flags=re.S)


def kramdown_markup(markdown: str) -> list[str]:
    """What kramdown could read as HTML, attributes, extensions or an unsafe link."""
    text = kramdown_text(markdown)
    problems = [m.group() for m in re.finditer(r"<[^\n]{0,20}", text)]
    problems += [m.group() for m in re.finditer(r"(?<!\\)\{:[^\n]{0,20}", text)]
    problems += [f"]({url}" for url in re.findall(r"(?<!\\)\]\(\s*<?([^)\s>]*)", text)
                 if not allowed_target(url)]
    problems += [m.group() for m in re.finditer(r"^[> ]*(?<!\\)\[[^\]\n]*(?<!\\)\]:\s*(\S+)",
                                                text, re.M) if not allowed_target(m.group(1))]
    return problems


def statistic(name: str) -> str:
    return f"def {name}(t, dim, keepdim=False):\n    return t.mean(dim=dim, keepdim=keepdim)\n"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A lab whose notes, names and DIY functions are all hostile, exported every way."""
    lab = fl.Lab(":memory:")
    for name in SHADOWING:
        lab.define_statistic(f"{name.strip('_')}_stat", source=statistic(name))
    lab.define_statistic("fine_stat", source=statistic("fine"))
    observables = [*TINY["observables"], "print_stat", "fine_stat"]
    lab.create_experiment(**{**TINY, "observables": observables}, name=HOSTILE_NAMES[0])
    for name in HOSTILE_NAMES[1:]:
        lab.create_experiment(based_on="exp_0", name=name)
    lab.run("exp_0")
    lab.view_results(["exp_0"])
    lab.open_chart("train_loss")
    for note in HOSTILE_NOTES:
        lab.note(note)
    lab.fit("exp_0", "train_loss", families=["exponential", "linear"])
    out = tmp_path_factory.mktemp("hostile")
    return {"lab": lab, "out": out, "md": lab.export_blog(out / "post.md").read_text("utf-8"),
            "html": lab.export_blog(out / "post.html").read_text("utf-8"),
            "graph": lab.export_graph(out / "graph"), "script": lab.export_script(out / "s.py")}


def test_the_markdown_post_has_no_live_html_or_link_under_commonmark(hostile):
    assert live_html(commonmark(hostile["md"])) == []
    page = live_html(hostile["html"].split("<main>", 1)[1], MATHML_TAGS,
                     MATHML_ATTRIBUTES | {"xmlns"})
    assert [p for p in page if not p.startswith("<img src=data:image/png;base64,")] == []


def test_the_markdown_post_leaves_kramdown_no_html_attribute_list_or_link(hostile):
    markdown = hostile["md"]
    assert kramdown_markup(markdown) == []
    assert r'\{: onmouseover="alert(1)"\}' in markdown  # shown, escaped
    assert r"\{::nomarkdown\}" in markdown
    assert "](javascript:" not in markdown.replace(r"\](javascript:", "")


def test_the_checks_see_what_the_old_writer_let_through():
    """The CommonMark and kramdown checks above catch the holes of writing notes as typed
    (only their raw HTML escaped, outside what a line scanner took for code)."""
    post = ("---\ntitle: x\n---\n\n> ```x`\n> <script>alert(1)</script>\n\n"
            "> [x](javascript:alert(1))")
    assert "<script>" in live_html(commonmark(post))
    assert "<a href=javascript:alert(1)>" in live_html(commonmark(post))
    unclosed = "---\ntitle: x\n---\n\n> ~~~\n> <img src=x onerror=alert(1)>\n\n> {: x}"
    assert live_html(commonmark(unclosed)) == []  # code, to CommonMark
    assert kramdown_markup(unclosed) == ["<img src=x onerror=al", "{: x}"]
    under_text = "---\ntitle: x\n---\n\n> - a\n>   ~~~\n>   <b>c</b>\n>   ~~~"
    assert kramdown_markup(under_text) == ["<b>c</b>"]


# Pieces of Markdown, HTML and kramdown syntax that random notes are made of.
PIECES = ["<script>", "<b>", "</b>", "`", "``", "```", "~~~", "{:", "{::nomarkdown}", "{:/}", "[x]",
          "(javascript:alert(1))", "](", "]: javascript:x", "$", "$$", "\\", "*", "**", "_", "\n",
          "\n\n", " ", "> ", "- ", "1. ", "2) ", "|", "| --- |", "&lt;", "&#60;", "<https://a.b>",
          "<javascript:x>", "![", "#", ":", "{", "}", "    ", "\t", "\r", "a", "x y", "<!--",
          "<img src=x onerror=alert(1)>", "-->", "[a](b)", "[a](http://x/<b>)", "\\`", "\\$",
          "&", "<", ">", "\x00", "\ud800", "+", "=", "===", "---", "***", "___", "^", "[^1]",
          "<div markdown=1>", "</div>", "*[HTML]: x", "\u2028", "\x0c"]


def test_random_notes_of_markdown_pieces_stay_text():
    random = Random(13)
    for _ in range(300):
        note = "".join(random.choice(PIECES) for _ in range(random.randint(1, 14)))
        post = "---\ntitle: x\n---\n\n> " + "\n> ".join(note_markdown(note)) + "\n\nafter"
        assert (live_html(commonmark(post)), kramdown_markup(post)) == ([], []), repr(note)


def test_a_note_keeps_its_markdown(hostile):
    note = ("The loss falls *fast*, **then** `slowly`: $0 < r < 1$, see "
            "[the post](https://example.org/a_(b)).\n\n- one\n- two\n\n```python\nx = 1\n```")
    assert note_markdown(note) == [
        r"The loss falls *fast*, **then** `slowly`: $0 \lt{} r \lt{} 1$, see "
        "[the post](https://example.org/a_%28b%29).", "", "- one", "- two", "",
        "~~~python", "x = 1", "~~~"]
    html = MarkdownIt("commonmark").render("\n".join(note_markdown(note)))
    assert "<em>fast</em>" in html and "<code>slowly</code>" in html and "<li>two</li>" in html
    assert '<code class="language-python">x = 1' in html
    # the HTML page shows the math of a note as MathML, `\lt{}` included ("$a < b$")
    assert "<mi>a</mi><mo>&lt;</mo><mrow></mrow><mi>b</mi>" in hostile["html"]


class _Law:
    """A fitted law as draw_law reads it."""

    law = "power"

    def predict(self, x):
        return x ** -0.5


def test_math_and_latex_mathtext_does_not_know_export(hostile):
    assert "\\$\\$\\\\lVert x" in hostile["md"]  # the name, escaped in the sentences
    graph = json.loads(hostile["graph"].read_text())
    assert MATH in [node.get("name") for node in graph["nodes"]]
    picture = draw_law([1.0, 2.0, 3.0], [1.0, 0.5, 0.3], [0.1, 0.1, 0.1],
                       _Law(), title=MATH, xlabel=r"$\tfrac{1}{2}$", ylabel="\ud800\x00",
                       label="$$x$$")
    assert picture.png.startswith(b"\x89PNG")
    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot([1, 2], [1, 1000])
    ax.set_yscale("log")
    ax.set_title(MATH)
    plain_texts(fig)
    fig.savefig(io.BytesIO(), format="png")
    assert not ax.title.get_parse_math()  # shown as typed ...
    ticks = ax.get_yticklabels()  # ... and the log axis keeps its mathtext tick labels
    assert all(t.get_parse_math() for t in ticks) and any("$" in t.get_text() for t in ticks)


def test_lone_surrogates_and_nul_export_everywhere(hostile):
    for text in (hostile["md"], hostile["html"], hostile["graph"].read_text("utf-8"),
                 hostile["script"].read_text("utf-8")):
        assert "\x00" not in text and not re.search("[\ud800-\udfff]", text)
    assert "a\ufffdb\ufffdc and a pair \U0001f600 and NUL a\ufffdb" in hostile["md"]
    graph = json.loads(hostile["graph"].read_text("utf-8"))  # its \u escapes decoded
    assert not re.search("[\ud800-\udfff\x00]", json.dumps(graph, ensure_ascii=False))
    assert "name\ufffd with NUL\ufffd" in [node.get("name") for node in graph["nodes"]]
    compile(hostile["script"].read_text("utf-8"), "s.py", "exec")


def test_the_panel_state_can_be_sent(hostile):
    from featurelab.ui.widget import lab_state

    state = lab_state(hostile["lab"])
    json.dumps(state, ensure_ascii=False).encode("utf-8")  # as the kernel's comm sends it
    assert "a\ufffdb\ufffdc and a pair \U0001f600 and NUL a\ufffdb" in state["notes"]
    assert state["experiments"][2]["name"] == "name\ufffd with NUL\ufffd"


def test_diy_functions_named_like_what_the_script_uses_shadow_nothing(hostile):
    source = hostile["script"].read_text("utf-8")
    defined = {node.name for node in ast.parse(source).body
               if isinstance(node, ast.FunctionDef)}
    assert defined == {"fine"}  # the one DIY function whose name the script does not use
    assert "@lab.statistic('fine_stat')" in source
    assert "lab.define_statistic(\n    'print_stat',\n    source='def print(" in source
    done = subprocess.run([sys.executable, str(hostile["script"])], capture_output=True,
                          text=True, cwd=hostile["out"], timeout=600)
    assert done.returncode == 0, done.stderr
    fit = hostile["lab"].fits["fit_0"]
    assert done.stdout.startswith(f"fit_0: train_loss of exp_0\n{fit.table}\n")


def test_the_front_matter_reads_back_in_yaml_as_jekyll_reads_it(hostile, tmp_path):
    import yaml  # the test extra has PyYAML: Jekyll reads front matter as YAML
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml, as Ruby's Psych
    title = "Rockets \U0001f680 <b>x</b> \u2028 \x85 \ufeff \"q\" \\ {{ x }}"
    text = hostile["lab"].export_blog(tmp_path / "t.md", title=title).read_text("utf-8")
    front = yaml.load(text.split("---\n")[1], Loader=loader)
    assert front["title"] == title and front["render_with_liquid"] is False


def test_pictures_are_linked_from_a_post_whose_name_needs_encoding(hostile, tmp_path):
    path = hostile["lab"].export_blog(tmp_path / "my post (2).md")
    tokens = MarkdownIt("commonmark").parse(path.read_text("utf-8"))
    sources = [child.attrGet("src") for token in tokens for child in token.children or []
               if child.type == "image"]
    assert len(sources) >= 2
    assert all((tmp_path / unquote(str(src))).is_file() for src in sources)
    page = hostile["lab"].export_blog(tmp_path / "my page (2).html").read_text("utf-8")
    assert re.findall(r'<img src="([^":]*):', page) == ["data"] * len(sources)


def test_a_line_that_starts_with_a_number_and_a_dot_is_escaped_at_the_dot():
    assert escape("1. not a list") == r"1\. not a list"
    assert MarkdownIt("commonmark").render(escape("1. not a list")) == "<p>1. not a list</p>\n"
    assert escape("{: x}") == r"\{: x\}"
