"""A Document as Markdown for a Jekyll blog: front matter, then the blocks.

Text from the session (sentences, names, config values, fit failure reasons) is
escaped, so nothing a researcher or agent typed becomes markup: `<`, `>` and `&` as
entities, Markdown punctuation with backslashes (safe_markdown.escape_text). Notes are the
researcher's own Markdown, inside a blockquote marked as theirs, written back by
safe_markdown so that under CommonMark and kramdown alike they are the Markdown they
mean and no HTML. Math is `$...$` inline and `$$...$$` in fit tables, as the reference
post writes it. The front matter turns Liquid off (Jekyll 4): `{{` in a name stays text.
"""

from __future__ import annotations

import json
import math
import re
from urllib.parse import quote

from featurelab.engine.fit import _fmt_coef
from featurelab.export.blog import (
    Block,
    ChartBlock,
    Code,
    ConfigTable,
    CrossFitsBlock,
    Document,
    ExplorationBlock,
    FitTableBlock,
    GraphBlock,
    LawBlock,
    Note,
    Sentence,
    SweepBlock,
)
from featurelab.export.safe_markdown import escape_text, note_markdown
from featurelab.export.text import clean

NOTE_MARK = "**Researcher's note**"
_CODE_SPAN = re.compile(r"(`+).+?\1")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
# "<" opening a tag, a comment or a declaration; not an autolink such as <https://...>
_HTML_TAG = re.compile(r"<(?![A-Za-z][A-Za-z0-9+.-]{1,31}:[^<>\s]*>)(?=[A-Za-z/!?])")
# Characters YAML does not keep as they are in a double-quoted scalar (C1 controls, line
# and paragraph separators, BOM, non-characters): written as \u escapes.
_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


def escape(text: str) -> str:
    """Plain text as Markdown that shows exactly that text, on one line."""
    return escape_text(" ".join(str(text).split()))


def cell(text: str) -> str:
    """Plain text as the Markdown of a table cell: escaped as `escape` does, but for what
    only the start of a line makes markup ("0.001" is not a list item there)."""
    return escape_text(" ".join(str(text).split()), line_start=False)


def cell_math(latex: str) -> str:
    """LaTeX for a table cell: a bare "|" would end the cell."""
    return latex.replace(r"\left|", r"\left\lvert ").replace(r"\right|", r"\right\rvert ") \
        .replace("|", r"\vert ")


def yaml_json(value: object) -> str:
    """JSON that YAML (libyaml, as Jekyll reads it) reads back as the same value: a JSON
    string is a double-quoted YAML scalar, but libyaml refuses the surrogate-pair escapes
    that ASCII-only JSON writes for an emoji, so characters stay as they are, but those
    YAML would not keep."""
    text = json.dumps(value, ensure_ascii=False)
    return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _front_matter(doc: Document) -> str:
    about = {"lab": clean(doc.lab), "detail": doc.detail}
    return "\n".join(["---", "layout: post", f"title: {yaml_json(clean(doc.title))}",
                      f"date: {doc.date}", "tags: [featurelab]", f"featurelab: {yaml_json(about)}",
                      "render_with_liquid: false", "---"])


def _fence(source: str) -> str:
    # Tildes: kramdown's own fence as well as CommonMark's (under kramdown without GFM a
    # backtick fence is not code, and raw HTML in the source would be live).
    longest = max((len(run) for run in re.findall(r"~+", source)), default=0)
    return "~" * max(3, longest + 1)


def _config(block: ConfigTable) -> str:
    lines = [f"*Config of {escape(block.experiment)}*", "", "| Config | Value |", "|---|---|"]
    for key, text, latex in block.rows:
        value = escape(text) + (f", ${cell_math(latex)}$" if latex else "")
        lines.append(f"| {escape(key)} | {value} |")
    return "\n".join(lines)


def _fit_table(block: FitTableBlock) -> str:
    lines = [f"*Fit {escape(block.caption)}*", "",
             "| Type | R^2 | Equation | Coefficients |", "|---|---|---|---|"]
    for row in block.rows:
        r2 = f"{row.r2:.4f}" if row.ok else "failed"
        coefficients = (", ".join(map(_fmt_coef, row.coefficients)) if row.ok
                        else escape(row.reason or ""))
        lines.append(f"| {escape(row.label)} | {r2} | $${cell_math(row.latex)}$$ | "
                     f"{coefficients} |")
    return "\n".join(lines)


def _num(v: float) -> str:
    return f"{v:.4g}" if math.isfinite(v) else "–"


def _r2(v: float) -> str:
    return f"{v:.4f}" if math.isfinite(v) else "undefined"


def _law(block: LawBlock) -> str:
    lines = [f"*Fit {escape(block.caption)}*", "",
             f"| {cell(block.knob)} | mean | std | n | Group |", "|---|---|---|---|---|"]
    for p in block.points:
        missed = f" ({cell(', '.join(p.missed))} never there)" if p.missed else ""
        lines.append(f"| {_num(p.x)} | {_num(p.mean)} | {_num(p.std)} | {p.n} | "
                     f"{cell(p.group)}{missed} |")
    lines += ["", f"$${block.latex}$$", "",
              f"{escape(block.law)}, $R^2 = {_r2(block.r2)}$ (of {escape(block.r2_of)})."]
    if block.left_out:
        lines.append("Left out: " + "; ".join(f"{escape(g)} ({escape(why)})"
                                              for g, why in block.left_out) + ".")
    return "\n".join(lines)


def _final(value: tuple[float, float, int] | None) -> str:
    if value is None:
        return "–"
    mean, std, _ = value
    return f"{mean:.4g} ± {std:.2g}" if math.isfinite(std) else f"{mean:.4g}"


def _sweep(block: SweepBlock) -> str:
    lines = [f"## {escape(block.title)}", "", f"*{escape(block.summary)}*", "",
             "| Knob | Values |", "|---|---|"]
    lines += [f"| {cell(path)} | {cell(', '.join(values))} |" for path, values in block.knobs]
    head = ["Group", "Members", "Seeds", "n", *(f"{m}, final" for m in block.metrics)]
    lines += ["", "*Groups: members that differ only by seed; final values as mean ± std "
              "over the finished runs (n)*", "",
              "| " + " | ".join(cell(h) for h in head) + " |",
              "|" + "---|" * len(head)]
    for g in block.groups:
        cells = [cell(g.group), cell(", ".join(g.members)), cell(", ".join(map(str, g.seeds))),
                 str(g.n), *map(_final, g.finals)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _exploration(block: ExplorationBlock) -> str:
    lines = [f"## {escape(block.title)}", "", f"*{escape(block.summary)}*", "",
             "| Trajectory | |", "|---|---|"]
    lines += [f"| {cell(what)} | {cell(value)} |" for what, value in block.metrics]
    lines += ["", "| Iteration | Changes | Value | Decision | Reason |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in block.iterations]
    return "\n".join(lines)


def _cross_fits(block: CrossFitsBlock) -> str:
    lines = [f"*Fits across the runs of {escape(block.sweep)}*", "",
             "| Fit | Of | R^2 | Equation | Coefficients |", "|---|---|---|---|---|"]
    for fit, of, r2, latex, coefficients in block.rows:
        lines.append(f"| {cell(fit)} | {cell(of)} | {_r2(r2)} | $${cell_math(latex)}$$ | "
                     f"{coefficients} |")
    return "\n".join(lines)


def _code_spans(line: str) -> list[tuple[bool, str]]:
    """A line split into (is_code, text) pieces at its backtick code spans."""
    pieces, last = [], 0
    for match in _CODE_SPAN.finditer(line):
        pieces += [(False, line[last:match.start()]), (True, match.group(0))]
        last = match.end()
    return [*pieces, (False, line[last:])]


def escape_html(markdown: str) -> str:
    """Markdown with its raw HTML tags turned to text (code and autolinks kept), reading
    fences as CommonMark mostly does. Notes no longer go through it (safe_markdown writes
    them back from a parse instead: a fence one renderer reads and another does not left
    HTML live here)."""
    out, fence = [], None
    for line in markdown.splitlines():
        opener = _FENCE.match(line)
        if fence is not None or opener:
            if opener and (fence is None or opener.group(1).startswith(fence)):
                fence = opener.group(1) if fence is None else None
            out.append(line)
            continue
        out.append("".join(text if code else _HTML_TAG.sub("&lt;", text)
                           for code, text in _code_spans(line)))
    return "\n".join(out)


def _note(block: Note) -> str:
    body = note_markdown(block.text)
    return "\n".join([f"> {NOTE_MARK}", ">"] + [f"> {line}".rstrip() for line in body])


def _file(name: str) -> str:
    """A picture's relative path as a link target: %-encoded, so that a post saved as
    "my post (2).md" links to "my%20post%20%282%29_files/..." and not to nothing."""
    return quote(name, safe="/")


def _block(block: Block, files_dir: str, files: dict[str, bytes]) -> str:
    if isinstance(block, Sentence):
        return escape(block.text)
    if isinstance(block, Note):
        return _note(block)
    if isinstance(block, ConfigTable):
        return _config(block)
    if isinstance(block, Code):
        fence = _fence(block.source)
        return f"*{escape(block.title)}*\n\n{fence}{block.language}\n{block.source}\n{fence}"
    if isinstance(block, FitTableBlock):
        return _fit_table(block)
    if isinstance(block, ChartBlock):
        name = f"{files_dir}/{block.name}.png"
        files[name] = block.picture.png
        return (f"![{escape(block.picture.alt)}]({_file(name)})\n"
                f"*{escape(block.picture.caption)}*")
    if isinstance(block, LawBlock):
        return _law(block)
    if isinstance(block, SweepBlock):
        return _sweep(block)
    if isinstance(block, CrossFitsBlock):
        return _cross_fits(block)
    if isinstance(block, ExplorationBlock):
        return _exploration(block)
    if isinstance(block, GraphBlock):
        name = f"{files_dir}/knowledge-graph.png"
        files[name] = block.png
        return (f"## Knowledge graph\n\n"
                f"![Knowledge graph: {escape(block.summary)}]({_file(name)})\n"
                f"*{escape(block.summary)}*\n\n## Session")
    raise TypeError(f"unknown block {block!r}")


def render_markdown(doc: Document, files_dir: str) -> tuple[str, dict[str, bytes]]:
    """(Markdown text, {relative path: PNG bytes}) with pictures under `files_dir`."""
    files: dict[str, bytes] = {}
    intro = (f"*The session of the featurelab lab {escape(doc.lab)} on {doc.date}, written up "
             f"from its action log ({doc.detail} detail). Quoted notes are the researcher's "
             "own words; every other sentence tells one recorded action.*")
    parts = [_front_matter(doc), intro] + [_block(b, files_dir, files) for b in doc.blocks]
    # A lone surrogate or NUL in any name would make the file unwritable or unreadable.
    return clean("\n\n".join(parts) + "\n"), files
