"""The blog draft as one HTML page: well-formed, math as MathML, pictures inside, and
every piece of session text escaped."""

import base64
import re
import struct
from html.parser import HTMLParser

import pytest
from conftest import TINY_LAB as TINY

import featurelab as fl
from featurelab.export.html_page import markdown_to_html, math_html, safe_mathml

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}
EVIL = "<script>alert(1)</script>"


class Checker(HTMLParser):
    """Every non-void element closed, in order; records tags, data and image sources."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.tags, self.images, self.text = [], [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def check(page: str) -> Checker:
    checker = Checker()
    checker.feed(page)
    checker.close()
    assert checker.errors == [] and checker.stack == [], (checker.errors, checker.stack)
    return checker


@pytest.fixture(scope="module")
def page(reference_lab, tmp_path_factory):
    from featurelab.export.blog import export_blog

    # the export function itself: Lab.export_blog would log an export in the shared lab
    path = export_blog(reference_lab, tmp_path_factory.mktemp("html") / "post.html")
    return path.read_text()


def test_the_page_is_well_formed_standalone_and_embeds_every_picture(page):
    checker = check(page)
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/1998/Math/MathML"', "")  # nothing to fetch, nothing to run
    assert len(checker.images) >= 4
    for src in checker.images:
        assert src.startswith("data:image/png;base64,")
        data = base64.b64decode(src.split(",", 1)[1])
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", data[16:24])[0] >= 600


def test_every_sentence_table_and_code_is_on_the_page(reference_lab, page):
    text = "".join(check(page).text)
    for sentence in reference_lab.log.sentences():
        assert sentence in text
    assert page.count("<th>Config</th>") == 2
    assert "def compute_nonlinear_rate(tensor, dim, keepdim=False):" in text
    assert "return ((t &gt; 0) * (t &lt; 1))" in page  # code escaped, shown as written
    assert page.count("<th>Coefficients</th>") == 1


def test_the_data_formula_and_fit_equations_are_mathml(page):
    maths = re.findall(r"<math .*?</math>", page, re.S)
    assert len(maths) == 2 + 4  # two data formulas, four fit equations
    formula = maths[0]
    assert "<msubsup><mo>∑</mo><mrow><mi>i</mi><mo>=</mo><mn>1</mn></mrow><mrow><mn>10</mn>" \
        in formula  # inline: the limits beside the sum
    assert "<msup><mi>sin</mi><mn>2</mn></msup>" in formula
    sigmoid = maths[2]
    assert sigmoid.count("<mfrac>") == 1 and 'display="block"' in sigmoid
    assert "<code class=\"latex\">" not in page  # every formula converted


def test_user_text_is_escaped_everywhere(tmp_path):
    lab = fl.Lab(":memory:")
    lab.create_experiment(**TINY, name=EVIL)
    lab.note(f"An agent wrote {EVIL} and <img src=x onerror=alert(2)> and "
             r"$\text{<b>bold</b>}$ and [x](javascript:alert(3))")
    page = lab.export_blog(tmp_path / "evil.html").read_text()
    checker = check(page)
    assert "script" not in checker.tags and "b" not in checker.tags
    assert checker.tags.count("img") == 1  # the knowledge graph only
    assert "javascript:" not in " ".join(re.findall(r'href="[^"]*"', page))
    text = "".join(checker.text)
    assert f"Created experiment 0, '{EVIL}'." in text  # shown as text, twice: the sentence
    assert text.count(EVIL) == 3  # ... the config table and the note
    markdown = lab.export_blog(tmp_path / "evil.md").read_text()
    assert EVIL not in markdown and "<img src=x" not in markdown


def test_latex_that_would_inject_html_is_kept_as_text():
    assert "<b>" not in math_html(r"\text{<b>x</b>}", False)
    assert safe_mathml('<math><mrow href="javascript:x"><mi>x</mi></mrow></math>') == \
        '<math xmlns="http://www.w3.org/1998/Math/MathML"><mrow><mi>x</mi></mrow></math>'
    assert safe_mathml("<math><script>x</script></math>") is None
    assert math_html(r"x & y", False) == '<code class="latex">x &amp; y</code>'


def test_markdown_math_rules():
    html = markdown_to_html(r"costs $5 and $6; $x^2$ and $$\frac{a}{b}$$ and \$y\$", {})
    assert "costs $5 and $6" in html
    assert html.count("<math") == 2 and 'display="block"' in html
    assert "$y$" in html
