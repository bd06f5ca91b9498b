"""User text on its way out of Python: into a file, JSON, or a picture.

Any text a researcher or an agent can type must export. Two kinds of character that a
Python string may hold break the formats it goes to: a lone surrogate (half of a UTF-16
pair, e.g. "\\ud800" from a JSON "\\ud800" escape), which no UTF-8 file, no comm message
and no font renderer accepts, and NUL, which Python source cannot hold and C code reads as
the end of a string. Both become U+FFFD, the character that says "something was here".

matplotlib reads text between `$` signs as mathtext and raises on what its parser does not
know (`$$`, `\\lVert`, `\\tfrac`); `plain_texts` makes every text of a picture plain.
"""

from __future__ import annotations

import re
from typing import Any

REPLACEMENT = "\ufffd"
_UNSAFE = re.compile("[\ud800-\udfff\x00]")


def clean(text: str) -> str:
    """`text` with each lone surrogate and NUL as U+FFFD; a surrogate pair written as two
    code points ("\\ud83d\\ude00") becomes the one character it encodes."""
    if not _UNSAFE.search(text):
        return text
    # UTF-16 holds any pair as the character it is; decoding it back replaces a lone half.
    text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text.replace("\x00", REPLACEMENT)


def clean_data(value: Any) -> Any:
    """JSON-like data (dicts, lists, tuples, strings) with every string and key cleaned."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {clean_data(k): clean_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(clean_data(v) for v in value)
    return value


def plain_texts(fig: Any) -> None:
    """Every text of a matplotlib figure shown as written: no mathtext, no LaTeX (a user's
    `text.usetex` would send names to LaTeX), no character its fonts cannot take. Tick
    labels are left alone: matplotlib writes them at draw time, log axes as mathtext."""
    from matplotlib.axis import Axis
    from matplotlib.text import Text

    ticks = {id(t) for axis in fig.findobj(Axis) for t in axis.findobj(Text)
             if t is not axis.label}
    for text in fig.findobj(Text):
        if id(text) not in ticks:
            text.set_parse_math(False)
            text.set_usetex(False)
            text.set_text(clean(str(text.get_text())))
