"""Tests for featurelab.engine.formula: numbers, LaTeX, error messages and hostile input."""

from __future__ import annotations

import ast
import builtins
import math
import os

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featurelab.engine.formula import MAX_CHARS, Formula, parse_formula
from featurelab.errors import ConfigError

DIM = 10


@pytest.fixture
def x() -> torch.Tensor:
    return torch.randn(7, DIM, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def _y(text: str, x: torch.Tensor) -> torch.Tensor:
    return parse_formula(text, x.shape[1]).evaluate(x)


def _err(text: str, dim: int = DIM, **kw: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_formula(text, dim, **kw)
    return str(info.value)


# --- numeric ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sum(sin(10*x)**2)", lambda x: (torch.sin(10 * x) ** 2).sum(1)),
        ("x[0]*x[1]", lambda x: x[:, 0] * x[:, 1]),
        ("x0 + 2*x3", lambda x: x[:, 0] + 2 * x[:, 3]),
        ("x_2 - x[2]", lambda x: torch.zeros(len(x), dtype=x.dtype)),
        ("mean(x)", lambda x: x.mean(1)),
        ("max(abs(x))", lambda x: x.abs().amax(1)),
        ("min(x) + prod(cos(x))", lambda x: x.amin(1) + torch.cos(x).prod(1)),
        ("exp(-x[0]**2)", lambda x: torch.exp(-x[:, 0] ** 2)),
        ("sigmoid(x1) + relu(x2) - sign(x3)",
         lambda x: torch.sigmoid(x[:, 1]) + torch.relu(x[:, 2]) - torch.sign(x[:, 3])),
        ("tanh(x0) / (1 + sqrt(abs(x1))) + log(1 + x2**2) + tan(x3)",
         lambda x: torch.tanh(x[:, 0]) / (1 + x[:, 1].abs().sqrt()) + torch.log1p(x[:, 2] ** 2)
         + torch.tan(x[:, 3])),
        ("sum((x - mean(x))**2) / 10", lambda x: x.var(1, unbiased=False)),
        ("pi * e + 0.5", lambda x: torch.full((len(x),), math.pi * math.e + 0.5, dtype=x.dtype)),
        ("-+-x9 ** -1", lambda x: x[:, 9] ** -1),
    ],
)
def test_evaluate_matches_torch(text, expected, x):
    y = _y(text, x)
    assert y.shape == (7,) and y.dtype == x.dtype
    torch.testing.assert_close(y, expected(x))


def test_constant_broadcasts_and_dtype_is_kept():
    f = parse_formula("2**3", 3)
    x32 = torch.zeros(5, 3, dtype=torch.float32)
    y = f.evaluate(x32)
    assert y.shape == (5,) and y.dtype == torch.float32 and torch.all(y == 8)


def test_formula_is_frozen_value():
    f = parse_formula("sum(x)", 4)
    assert f == Formula("sum(x)", 4) and (f.text, f.dim) == ("sum(x)", 4)
    with pytest.raises(AttributeError):
        f.text = "x0"  # type: ignore[misc]


def test_evaluate_rejects_wrong_input():
    f = parse_formula("sum(x)", 4)
    with pytest.raises(ValueError, match=r"\[n, 4\]"):
        f.evaluate(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="floating"):
        f.evaluate(torch.zeros(3, 4, dtype=torch.int64))


# --- LaTeX -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "latex"),
    [
        ("sum(sin(10*x)**2)", r"\sum_{i=1}^{10} \sin^2(10 x_i)"),
        ("mean(x**2)", r"\frac{1}{10}\sum_{i=1}^{10} x_i^2"),
        ("x[3] * x3", r"x_{3} \cdot x_{3}"),
        ("exp(-x[0]**2)", r"e^{-x_{0}^2}"),
        ("x0 / sqrt(x1)", r"\frac{x_{0}}{\sqrt{x_{1}}}"),
        ("(x0 + x1) * x2", r"(x_{0} + x_{1}) \cdot x_{2}"),
        ("x0 - (x1 - x2)", r"x_{0} - (x_{1} - x_{2})"),
        ("-2*x0 + pi*x1", r"-2 x_{0} + \pi \cdot x_{1}"),
        ("(-x0)**2", r"(-x_{0})^2"),
        ("sum(x) + 1", r"\left(\sum_{i=1}^{10} x_i\right) + 1"),
        ("sum(x - mean(x))", r"\sum_{i=1}^{10} \left(x_i - \frac{1}{10}\sum_{j=1}^{10} x_j\right)"),
        ("max(abs(x))", r"\max_{1 \le i \le 10} \left|x_i\right|"),
        ("sigmoid(x0) + relu(x1)", r"\sigma(x_{0}) + \operatorname{relu}(x_{1})"),
    ],
)
def test_latex(text, latex):
    assert parse_formula(text, DIM).to_latex() == latex


# --- error messages --------------------------------------------------------------------------

def test_error_is_config_error_with_field_and_grammar():
    msg = _err("sin(x0", field="task.target")
    assert msg.startswith("task.target: got 'sin(x0'")
    assert "sum mean prod max min" in msg and "x0..x9" in msg


def test_syntax_error_names_column():
    assert "syntax error at column 6" in _err("x0 + * x1")


def test_unknown_name_suggests_closest():
    msg = _err("sinn(x0)")
    assert "unknown function 'sinn'" in msg and "did you mean 'sin'" in msg
    msg = _err("x0 * pii")
    assert "unknown name 'pii'" in msg and "did you mean 'pi'" in msg and "column 6" in msg


@pytest.mark.parametrize(
    ("text", "piece"),
    [
        ("x.__class__", "attribute access '.__class__'"),
        ("open('f')", "unknown function 'open'"),
        ("lambda: 1", "lambda"),
        ("sum([v for v in x])", "comprehension"),
        ("'abc'", "string literal"),
        ("x0[1]", "only x[integer] may be subscripted"),
        ("x[0][1]", "only x[integer] may be subscripted"),
        ("x[-1]", "non-negative integer"),
        ("x[1:3]", "non-negative integer"),
        ("x[1.0]", "non-negative integer"),
        ("x0 if x1 else x2", "conditional expression"),
        ("x0 < x1", "comparison"),
        ("x0 // 2", "'//'"),
        ("x0 ^ 2", "use ** for powers"),
        ("sin + 1", "'sin' is a function"),
        ("x(1)", "'x' is not a function"),
        ("sin(x=1)", "keyword"),
        ("True", "bool"),
    ],
)
def test_forbidden_constructs_are_named(text, piece):
    assert piece in _err(text)


def test_index_out_of_range():
    assert "index 12 but dim is 10" in _err("x[12]")
    assert "index 10 but dim is 10" in _err("x0 + x10")


def test_wrong_number_of_arguments():
    assert "sin() takes exactly 1 argument, got 2" in _err("sin(x0, x1)")
    assert "sum() takes exactly 1 argument, got 0" in _err("sum()")


def test_result_of_wrong_shape():
    msg = _err("sin(x)")
    assert "[n, 10]" in msg and "sum(...)" in msg and "mean(...)" in msg
    assert "must involve the whole vector x" in _err("sum(x0)")


def test_limits():
    assert f"limit is {MAX_CHARS}" in _err("x0+" * 200 + "x0")
    assert "levels deep" in _err("sin(" * 60 + "x0" + ")" * 60)
    assert "larger than 100" in _err("x0 ** 101")
    assert "larger than 100" in _err("x0 ** -1e3")
    assert "too large" in _err("1e400")
    assert "empty" in _err("   ")


def test_power_tower_is_float_math_not_bigint():
    # Python ints would take forever on 10**10**10; the tree is evaluated in floats.
    y = parse_formula("10**10**10 + 0*x0", DIM).evaluate(torch.zeros(2, DIM))
    assert torch.isinf(y).all()


def test_bad_dim_and_text_type():
    with pytest.raises(ConfigError, match="dim"):
        parse_formula("x0", 0)
    with pytest.raises(ConfigError, match="string"):
        parse_formula(b"x0", 3)  # type: ignore[arg-type]


# --- hostile input ---------------------------------------------------------------------------

HOSTILE = [
    "__import__('os').system('x')",
    "().__class__.__bases__",
    "().__class__.__bases__[0].__subclasses__()",
    "open('f')",
    "x.__class__",
    "eval('1')",
    "exec('import os')",
    "globals()",
    "getattr(x, 'numpy')()",
    "[].__class__",
    "sum.__self__",
    "x.numpy()",
    "import os",
    "x0; x1",
    "(lambda: 0)()",
    "(y := 3)",
    "f'{x}'",
    "x[0].__class__",
    "x[__import__('os')]",
    "sin(*x)",
    "sin(**{'a': 1})",
    "-" * 100 + "x0",
    "sin(" * 200 + "x0" + ")" * 200,
    "(" * 240 + "x0" + ")" * 240,
    "x0 + " * 1000 + "x0",
    "\x00",
    "x0\n+x1\nimport os",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_input_is_rejected(text):
    calls: list[str] = []
    real_compile = builtins.compile

    def only_ast_compile(source, filename, mode, flags=0, *args, **kwargs):
        # ast.parse goes through compile(); anything but an AST-only compile would be a leak.
        if not flags & ast.PyCF_ONLY_AST:
            calls.append(f"compile({source!r})")
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    def record(name):
        return lambda *a, **k: calls.append(f"{name}{a!r}")

    saved = {n: getattr(builtins, n) for n in ("eval", "exec", "compile")}
    saved_system = os.system
    builtins.eval, builtins.exec = record("eval"), record("exec")
    builtins.compile, os.system = only_ast_compile, record("os.system")
    try:
        with pytest.raises(ConfigError):
            parse_formula(text, DIM)
    finally:
        for name, fn in saved.items():
            setattr(builtins, name, fn)
        os.system = saved_system
    assert calls == []


_TOKENS = ["x", "x0", "x[1]", "x[12]", "x9", "pi", "e", "1", "2.5", "10", "(", ")", "+", "-",
           "*", "/", "**", ",", "sin", "exp", "log", "sqrt", "sum", "mean", "max", "prod",
           "sigmoid", " ", ".", "__class__", "'", "[", "]", "lambda", ":"]


def _check_total(text: str) -> None:
    try:
        f = parse_formula(text, DIM)
    except ConfigError:
        return
    x = torch.randn(4, DIM, generator=torch.Generator().manual_seed(1))
    y = f.evaluate(x)
    assert y.shape == (4,) and y.dtype == x.dtype
    assert isinstance(f.to_latex(), str)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=80))
def test_arbitrary_text_parses_or_raises_config_error(text):
    _check_total(text)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_TOKENS), max_size=25).map("".join))
def test_token_soup_parses_or_raises_config_error(text):
    _check_total(text)


_LEAVES = st.sampled_from(["x", "x0", "x[3]", "x_9", "pi", "e", "2", "0.5", "10", "1e-3"])
_FUNC_NAMES = ["sin", "cos", "tan", "exp", "log", "sqrt", "abs", "tanh", "sigmoid", "relu",
               "sign", "sum", "mean", "prod", "max", "min"]


def _extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "**"]), inner)
    return st.one_of(
        binary.map(lambda t: f"({t[0]}){t[1]}({t[2]})"),
        st.tuples(st.sampled_from(_FUNC_NAMES), inner).map(lambda t: f"{t[0]}({t[1]})"),
        inner.map(lambda s: f"-({s})"),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.recursive(_LEAVES, _extend, max_leaves=12))
def test_grammar_formulas_parse_or_raise_config_error(text):
    _check_total(text)
