"""The researcher's Markdown (a note) rewritten as Markdown that shows what it says and
becomes no other markup, under CommonMark and under Jekyll's kramdown alike.

A note may come from an agent, and the post is rendered by whatever renderer a blog
uses. Patching the note's own text cannot be made safe: kramdown has syntax CommonMark
lacks (`{: onmouseover=...}` attribute lists, `{::nomarkdown}`, `$$` math) and reads some
of CommonMark's differently (a backtick fence with a backtick in its info string opens no
fence in CommonMark and one in a line scanner; an unclosed fence is code to one renderer
and text with live HTML to the other). So a note is parsed once, as CommonMark
(markdown-it, with tables and the `$` math the HTML page reads), and written back from
that parse in one plain form: every piece of text escaped, code in `~~~` fences and
backtick spans that nothing inside can close, links and images kept only to http(s),
mailto or relative targets, raw HTML as text. Every markup character of the result is one
this module wrote. The result is parsed again and, should it hold HTML or another link
after all, the note is written as escaped plain text instead.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import quote

from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline
from markdown_it.tree import SyntaxTreeNode

from featurelab.export.text import clean

# What makes markup anywhere in a line: CommonMark's, and kramdown's `{` (attribute lists,
# extensions) and `$` (math).
_PUNCTUATION = re.compile(r"([\\`*\[\]|~${}])")
# "_" makes emphasis only at a word's edge; "exp_0" stays readable.
_EDGE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
# And at a line's start: headings, quotes, list items, setext rules, kramdown definitions.
_LINE_START = re.compile(r"^(?:[-=>#+:]|\d+[.)])")
LINK_SCHEMES = ("http", "https", "mailto")
IMAGE_SCHEMES = ("http", "https")
_URL_SAFE = "!#%&+,-./:;=?@_~"  # kept by quote(); anything else is %-encoded


def escape_text(text: str, line_start: bool = True) -> str:
    """Text as Markdown that shows exactly it (whitespace kept); `line_start`: it starts a
    line, where "1." or "#" would be markup."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _EDGE_UNDERSCORE.sub(r"\\_", _PUNCTUATION.sub(r"\\\1", text))
    match = _LINE_START.match(text) if line_start else None
    if match is None:
        return text
    # "1." escaped at its dot: a backslash before a digit would show.
    at = match.end() - 1 if match.group(0)[0].isdigit() else 0
    return text[:at] + "\\" + text[at:]


# -- reading: `$` math as the HTML page reads it ------------------------------------------

def math_rule(state: StateInline, silent: bool) -> bool:
    """`$...$` and `$$...$$`. A single `$` opens only before a non-space and the next
    unescaped `$` closes only after one and before no digit (so "costs $5 and $6" stays
    text), as pandoc reads it."""
    src, start = state.src, state.pos
    if src[start] != "$":
        return False
    display = src.startswith("$$", start)
    if display:
        end = src.find("$$", start + 2)
        if end < 0 or end == start + 2:
            return False
        content, after = src[start + 2:end], end + 2
    else:
        if start + 1 >= state.posMax or src[start + 1].isspace():
            return False
        end = src.find("$", start + 1)
        while end > 0 and src[end - 1] == "\\":  # an escaped dollar inside the math
            end = src.find("$", end + 1)
        if end < 0 or end >= state.posMax or src[end - 1].isspace() or \
                src[end + 1:end + 2].isdigit():
            return False
        content, after = src[start + 1:end], end + 1
    if not silent:
        token = state.push("math_display" if display else "math_inline", "math", 0)
        token.content = content
        token.markup = "$$" if display else "$"
    state.pos = after
    return True


@functools.cache
def _reader() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    md.inline.ruler.before("escape", "math", math_rule)
    return md


@functools.cache
def _checker() -> MarkdownIt:
    """CommonMark as a permissive site renders it: raw HTML on, any link target."""
    md = MarkdownIt("commonmark", {"html": True}).enable("table")
    md.validateLink = lambda url: True  # type: ignore[method-assign]
    return md


# -- writing ------------------------------------------------------------------------------

def target(url: str, schemes: tuple[str, ...]) -> str | None:
    """A link target as written back (%-encoded: no space, bracket or quote to end it
    early), or None if its scheme is not one of `schemes` ("javascript:", "data:")."""
    scheme = re.match(r"[^/?#]*:", url)
    if scheme is not None and scheme.group(0)[:-1].lower() not in schemes:
        return None
    return quote(url, safe=_URL_SAFE)


def code_span(content: str) -> str:
    """Inline code in backticks that no run inside it can close (kramdown closes at the
    first run as long as the opening one, CommonMark at one exactly as long)."""
    longest = max((len(run) for run in re.findall("`+", content)), default=0)
    if content[:1] == "`" or content[-1:] == "`" or (
            content[:1] == " " and content[-1:] == " " and content.strip(" ")):
        content = f" {content} "  # both renderers take one space off each side
    ticks = longest + 1
    if ticks == 1 and content[:1].isspace():
        ticks = 2  # kramdown reads a lone backtick between spaces as a backtick
    return f"{'`' * ticks}{content}{'`' * ticks}"


def math(content: str, markup: str, table: bool) -> str | None:
    """`$...$` or `$$...$$` as written back, or None if its LaTeX could make markup.
    kramdown reads `$...$` as text, so the LaTeX must hold nothing Markdown reads: `<`
    and `>` become `\\lt{}` and `\\gt{}` (the same to MathJax, KaTeX and latex2mathml);
    backticks, link brackets and `{:` (no LaTeX needs them) keep it from being math."""
    content = content.replace("\n", " ").replace("<", r"\lt{}").replace(">", r"\gt{}")
    if table:
        content = content.replace("|", r"\vert{}")  # a bare "|" would end the cell
    if "`" in content or "](" in content or "][" in content or "{:" in content:
        return None
    return f"{markup}{content}{markup}"


class _Inline:
    """The inline content of one block, written back; `table`: in a table cell."""

    def __init__(self, table: bool) -> None:
        self.table = table
        self.out: list[str] = []
        self.line_start = True

    def put(self, markdown: str) -> None:
        self.out.append(markdown)
        self.line_start = self.line_start and not markdown

    def text(self, text: str) -> None:
        self.put(escape_text(text, self.line_start))

    def walk(self, nodes: list[SyntaxTreeNode]) -> None:
        for i, node in enumerate(nodes):
            kind = node.type
            if kind == "text":
                self.text(node.content)
            elif kind in ("softbreak", "hardbreak"):
                if self.table:
                    self.put(" ")
                else:
                    self.out.append("\n")
                    self.line_start = True
            elif kind == "code_inline":
                if i and nodes[i - 1].type == "code_inline":
                    raise ValueError("adjacent code spans")  # their backticks would join
                if self.table and "|" in node.content:
                    self.text(node.content)  # a table splits cells at "|" first
                else:
                    self.put(code_span(node.content))
            elif kind in ("em", "strong"):
                mark = "*" if kind == "em" else "**"
                self.put(mark)
                self.walk(node.children)
                self.put(mark)
            elif kind == "link":
                self.link(node)
            elif kind == "image":
                self.image(node)
            elif kind in ("math_inline", "math_display"):
                written = math(node.content, node.markup, self.table)
                if written is None:
                    self.text(node.markup + node.content + node.markup)
                else:
                    self.put(written)
            else:
                raise ValueError(f"inline {kind}")

    def link(self, node: SyntaxTreeNode) -> None:
        url = str(node.attrs.get("href", ""))
        href = target(url, LINK_SCHEMES)
        if href is None:  # its words, and where it pointed as text
            self.walk(node.children)
            self.text(f" ({url})")
            return
        self.put("[")
        self.walk(node.children)
        self.put(f"]({href})")

    def image(self, node: SyntaxTreeNode) -> None:
        url = str(node.attrs.get("src", ""))
        alt = escape_text(_plain(node), False)
        src = target(url, IMAGE_SCHEMES)
        if src is None:
            self.text(f"{_plain(node)} ({url})")
        else:
            self.put(f"![{alt}]({src})")


def _plain(node: SyntaxTreeNode) -> str:
    """The text of an inline node and its children (an image's alt text)."""
    if node.type in ("text", "code_inline", "math_inline", "math_display"):
        return node.content
    if node.type in ("softbreak", "hardbreak"):
        return " "
    return "".join(_plain(child) for child in node.children)


def _inline(node: SyntaxTreeNode, table: bool = False) -> str:
    writer = _Inline(table)
    writer.walk(node.children[0].children if node.children else [])
    return "".join(writer.out)


def _fence(content: str, info: str) -> list[str]:
    """Code in a `~~~` fence (kramdown's own, and CommonMark's) longer than any run of
    tildes in it, so no line of it can close the fence in either."""
    longest = max((len(run) for run in re.findall("~+", content)), default=0)
    fence = "~" * max(3, longest + 1)
    words = info.split()
    language = re.sub(r"[^A-Za-z0-9_+#.-]", "", words[0]) if words else ""
    lines = content[:-1].split("\n") if content.endswith("\n") else content.split("\n")
    return [fence + language, *(lines if content else []), fence]


def _blocks(nodes: list[SyntaxTreeNode], tight: bool = False) -> list[str]:
    """Blocks a blank line apart: kramdown (without GFM) lets no fence, quote or heading
    end a paragraph, so code right under a line of text would be read as text. In a
    tight list item only a nested list follows its line directly (kramdown ends the
    paragraph there itself)."""
    lines: list[str] = []
    for node in nodes:
        if lines and not (tight and node.type in ("bullet_list", "ordered_list")):
            lines.append("")
        lines += _block(node)
    return lines


def _list(node: SyntaxTreeNode) -> list[str]:
    start = int(node.attrs.get("start", 1)) if node.type == "ordered_list" else 0
    tight = any(p.hidden for item in node.children for p in item.children
                if p.type == "paragraph")
    lines: list[str] = []
    for i, item in enumerate(node.children):
        marker = f"{start + i}." if node.type == "ordered_list" else "-"
        body = _blocks(item.children, tight) or [""]
        if lines and not tight:
            lines.append("")
        lines.append(f"{marker} {body[0]}".rstrip())
        lines += [" " * (len(marker) + 1) + line if line else "" for line in body[1:]]
    return lines


def _table(node: SyntaxTreeNode) -> list[str]:
    rows = [row for part in node.children for row in part.children]
    width = len(rows[0].children)
    lines = []
    for i, row in enumerate(rows):
        cells = [_inline(cell, table=True) for cell in row.children]
        lines.append("| " + " | ".join(cells) + " |")
        if i == 0:
            lines.append("|" + "---|" * width)
    return lines


def _block(node: SyntaxTreeNode) -> list[str]:
    kind = node.type
    if kind == "paragraph":
        return _inline(node).split("\n")
    if kind == "heading":
        text = _inline(node).replace("\n", " ")
        if text.endswith("#"):
            text = text[:-1] + "\\#"  # a closing "#" would be dropped
        return [("#" * int(node.tag[1:]) + " " + text).rstrip()]
    if kind == "blockquote":
        return [f"> {line}" if line else ">" for line in _blocks(node.children)]
    if kind in ("bullet_list", "ordered_list"):
        return _list(node)
    if kind in ("fence", "code_block"):
        return _fence(node.content, node.info if kind == "fence" else "")
    if kind == "hr":
        return ["* * *"]
    if kind == "table":
        return _table(node)
    raise ValueError(f"block {kind}")


def _live(markdown: str) -> bool:
    """Whether CommonMark with raw HTML on reads any HTML, or a link or image to a target
    `target` refuses, in the written Markdown: a bug here, never the note's doing."""
    for token in _checker().parse(markdown):
        if token.type in ("html_block", "html_inline"):
            return True
        for child in token.children or []:
            if child.type == "html_inline":
                return True
            url = child.attrGet("href") if child.type == "link_open" else \
                child.attrGet("src") if child.type == "image" else None
            if url is not None and target(str(url), LINK_SCHEMES) is None:
                return True
    return False


def plain_lines(text: str) -> list[str]:
    """Text as Markdown lines that show it as typed, no markup at all."""
    return [escape_text(line.strip()) for line in text.split("\n")]


def note_markdown(text: str) -> list[str]:
    """A note's Markdown as lines of Markdown that show what it means and nothing else."""
    text = clean(text).replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    try:
        lines = _blocks(SyntaxTreeNode(_reader().parse(text)).children)
    except ValueError:  # something this writer does not know: the note as plain text
        return plain_lines(text)
    if _live("\n".join(lines)):
        return plain_lines(text)
    return lines
