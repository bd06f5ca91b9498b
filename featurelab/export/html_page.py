"""The blog draft as one standalone HTML page: the Markdown rendered by markdown-it,
math as MathML (latex2mathml; browsers render it natively, so the page needs no script
and no network), the pictures embedded as data URIs, and a small stylesheet.

markdown-it runs with raw HTML off: whatever HTML a note or a name holds is shown as
text. latex2mathml does not escape everything (`\\text{<b>}` passes through), so its
output is parsed and written again keeping only MathML elements and attributes;
math that does not survive that is shown as its LaTeX source, escaped.
"""

from __future__ import annotations

import base64
import html
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import unquote

from latex2mathml.converter import convert
from markdown_it import MarkdownIt

from featurelab.export.blog import Document
from featurelab.export.safe_markdown import math_rule
from featurelab.export.text import clean

MATHML_NS = "http://www.w3.org/1998/Math/MathML"
MATHML_TAGS = frozenset(
    "math mrow mi mn mo ms mtext mspace msub msup msubsup mfrac msqrt mroot mstyle merror "
    "mpadded mphantom menclose munder mover munderover mtable mtr mtd mmultiscripts "
    "mprescripts none semantics".split())
MATHML_ATTRIBUTES = frozenset(
    "display stretchy fence form mathvariant columnalign rowspacing columnspacing width "
    "height depth lspace rspace separator accent accentunder movablelimits minsize maxsize "
    "symmetric largeop linethickness scriptlevel displaystyle mathsize notation "
    "columnlines rowlines frame align".split())

STYLE = """
:root { color-scheme: light; --fg: #1f2328; --muted: #59636e; --line: #d1d9e0;
  --note: #d946ef; --note-bg: #fdf4ff; --code-bg: #f6f8fa; }
body { margin: 0; background: #fff; color: var(--fg);
  font: 16px/1.6 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 52rem; margin: 0 auto; padding: 2rem 1.25rem 4rem; }
h1 { font-size: 1.9rem; line-height: 1.25; margin: 0 0 .25rem; }
h2 { font-size: 1.3rem; margin: 2rem 0 .75rem; border-bottom: 1px solid var(--line); }
.date { color: var(--muted); margin: 0 0 1.5rem; }
p { margin: .6rem 0; }
img { max-width: 100%; height: auto; display: block; margin: 1rem 0 .25rem;
  border: 1px solid var(--line); border-radius: 4px; }
em { color: var(--muted); }
table { border-collapse: collapse; margin: .75rem 0 1.25rem; font-size: .92rem; }
th, td { border: 1px solid var(--line); padding: .35rem .6rem; text-align: left;
  vertical-align: middle; }
th { background: var(--code-bg); }
pre { background: var(--code-bg); padding: .75rem 1rem; border-radius: 6px; overflow-x: auto;
  font-size: .88rem; line-height: 1.45; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
blockquote { margin: 1rem 0; padding: .5rem 1rem; border-left: 4px solid var(--note);
  background: var(--note-bg); border-radius: 0 6px 6px 0; }
blockquote > p:first-child strong { color: #a21caf; font-size: .85rem;
  text-transform: uppercase; letter-spacing: .04em; }
math[display="block"] { margin: .25rem 0; }
code.latex { color: #b91c1c; }
"""


def safe_mathml(xml: str) -> str | None:
    """latex2mathml's output rewritten with MathML only; None if it is not that."""
    try:
        root = ET.fromstring(xml)  # noqa: S314  (our own converter's output, no entities)
    except ET.ParseError:
        return None
    out: list[str] = []

    def write(element: ET.Element) -> None:
        tag = element.tag.rpartition("}")[2]
        if tag not in MATHML_TAGS:
            raise ValueError(tag)
        attrs = "".join(f' {k}="{html.escape(v, quote=True)}"'
                        for k, v in sorted(element.attrib.items()) if k in MATHML_ATTRIBUTES)
        if tag == "math":
            attrs = f' xmlns="{MATHML_NS}"' + attrs
        out.append(f"<{tag}{attrs}>")
        out.append(html.escape(element.text or "", quote=False))
        for child in element:
            write(child)
            out.append(html.escape(child.tail or "", quote=False))
        out.append(f"</{tag}>")

    try:
        write(root)
    except ValueError:
        return None
    return "".join(out)


def math_html(latex: str, display: bool) -> str:
    try:
        mathml = safe_mathml(convert(latex, display="block" if display else "inline"))
    except Exception:  # latex2mathml raises many kinds on LaTeX it does not know
        mathml = None
    if mathml is None:
        return f'<code class="latex">{html.escape(latex)}</code>'
    return mathml


def markdown_renderer() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "typographer": False}).enable("table")
    md.inline.ruler.before("escape", "math", math_rule)
    md.add_render_rule("math_inline", lambda self, tokens, i, *_: math_html(tokens[i].content,
                                                                            False))
    md.add_render_rule("math_display", lambda self, tokens, i, *_: math_html(tokens[i].content,
                                                                             True))
    return md


def _body(markdown: str) -> str:
    """The Markdown without its front matter (the page has its own title and date)."""
    if markdown.startswith("---\n"):
        end = markdown.find("\n---\n", 4)
        if end >= 0:
            return markdown[end + 5:]
    return markdown


def markdown_to_html(markdown: str, files: dict[str, bytes]) -> str:
    md = markdown_renderer()
    tokens = md.parse(_body(markdown))
    for token in tokens:
        for child in token.children or []:
            src: Any = child.attrGet("src") if child.type == "image" else None
            name = unquote(src) if isinstance(src, str) else None  # the Markdown %-encodes
            if name in files:  # our own pictures, embedded: the page is one file
                data = base64.b64encode(files[name]).decode("ascii")
                child.attrSet("src", f"data:image/png;base64,{data}")
    return md.renderer.render(tokens, md.options, {})


def render_html(doc: Document, markdown: str, files: dict[str, bytes]) -> str:
    title = html.escape(clean(doc.title))
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="generator" content="featurelab">',
        f"<title>{title}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        "<main>",
        f"<h1>{title}</h1>",
        f'<p class="date">{html.escape(doc.date)}</p>',
        markdown_to_html(markdown, files),
        "</main>",
        "</body>",
        "</html>",
        "",
    ])
