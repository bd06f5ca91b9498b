"""Safe parser for regression target formulas such as ``sum(sin(10*x)**2)``.

The text comes from a researcher's config, so it is parsed with ``ast`` and
checked node by node against a whitelist; nothing from it ever reaches
eval/exec/compile, and evaluation walks our own tree with torch ops only.
"""

from __future__ import annotations

import ast
import difflib
import math
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from featurelab.errors import ConfigError

__all__ = ["MAX_CHARS", "MAX_DEPTH", "MAX_EXPONENT", "Formula", "parse_formula"]

MAX_CHARS = 500
MAX_DEPTH = 50
MAX_EXPONENT = 100

# Shape classes of a subexpression: a scalar, one value per sample [n], or [n, dim].
_CONST, _SAMPLE, _VECTOR = 0, 1, 2

_FUNCS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sin": torch.sin, "cos": torch.cos, "tan": torch.tan, "exp": torch.exp,
    "log": torch.log, "sqrt": torch.sqrt, "abs": torch.abs, "tanh": torch.tanh,
    "sigmoid": torch.sigmoid, "relu": torch.relu, "sign": torch.sign,
}
_REDUCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sum": lambda t: t.sum(1), "mean": lambda t: t.mean(1), "prod": lambda t: t.prod(1),
    "max": lambda t: t.amax(1), "min": lambda t: t.amin(1),
}
_BINOPS: dict[type, str] = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_CONSTANTS = {"pi": math.pi, "e": math.e}
_NAMES = ["x", *_CONSTANTS, *_FUNCS, *_REDUCTIONS]
_COORD = re.compile(r"x_?([0-9]+)")

_BAD_OPS = {ast.FloorDiv: "'//'", ast.Mod: "'%'", ast.MatMult: "'@'", ast.LShift: "'<<'",
            ast.RShift: "'>>'", ast.BitOr: "'|'", ast.BitAnd: "'&'",
            ast.BitXor: "'^' (use ** for powers)", ast.Not: "'not'", ast.Invert: "'~'"}
_BAD_NODES = {ast.Lambda: "lambda", ast.ListComp: "a comprehension", ast.SetComp: "a comprehension",
              ast.DictComp: "a comprehension", ast.GeneratorExp: "a comprehension",
              ast.Compare: "a comparison", ast.BoolOp: "'and'/'or'",
              ast.IfExp: "a conditional expression", ast.Tuple: "a tuple", ast.List: "a list",
              ast.Dict: "a dict", ast.Set: "a set", ast.NamedExpr: "':='",
              ast.Starred: "a starred argument", ast.JoinedStr: "an f-string",
              ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield", ast.Slice: "a slice"}


def _allowed(dim: int) -> str:
    return (f"an expression in x (vector), x[i] or x0..x{dim - 1}, numbers, pi, e, "
            "+ - * / **, sin cos tan exp log sqrt abs tanh sigmoid relu sign, "
            "sum mean prod max min")


@dataclass(frozen=True)
class _Node:
    op: str  # "num", "x", "coord", "neg", a binary operator, or a function/reduction name
    kind: int
    args: tuple[_Node, ...] = ()
    value: float = 0.0
    name: str = ""  # "pi"/"e" for named constants, so LaTeX can show the symbol
    index: int = 0


class _Compiler:
    def __init__(self, text: str, dim: int, fld: str) -> None:
        self.text, self.dim, self.field = text, dim, fld

    def fail(self, hint: str, node: ast.AST | None = None) -> ConfigError:
        column = getattr(node, "col_offset", None)  # expressions have one; AST in general not
        if column is not None:
            hint = f"column {column + 1}: {hint}"
        # An over-long text would otherwise be echoed in full inside the message.
        shown = self.text if len(self.text) <= MAX_CHARS else self.text[:80] + "..."
        return ConfigError(self.field, shown, _allowed(self.dim), hint)

    def snippet(self, node: ast.AST) -> str:
        seg = ast.get_source_segment(self.text, node) or type(node).__name__
        return seg if len(seg) <= 40 else seg[:37] + "..."

    def compile(self) -> _Node:
        if len(self.text) > MAX_CHARS:
            raise self.fail(f"the formula is {len(self.text)} characters; the limit is {MAX_CHARS}")
        if not self.text.strip():
            raise self.fail("the formula is empty")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tree = ast.parse(self.text, mode="eval")
        except SyntaxError as exc:
            where = f" at column {exc.offset}" if exc.offset else ""
            raise self.fail(f"syntax error{where}: {exc.msg}") from None
        except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
            raise self.fail(f"cannot parse: {exc}") from None
        depth = _depth(tree.body)
        if depth > MAX_DEPTH:
            raise self.fail(f"nested more than {MAX_DEPTH} levels deep")
        root = self.visit(tree.body)
        if root.kind == _VECTOR:
            raise self.fail(f"the result has shape [n, {self.dim}], one value per coordinate; "
                            "wrap it in sum(...) or mean(...) to get one value per sample")
        return root

    def visit(self, node: ast.AST) -> _Node:
        if isinstance(node, ast.Constant):
            return self.number(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.Subscript):
            return self.subscript(node)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                arg = self.visit(node.operand)
                return _Node("neg", arg.kind, (arg,))
            if isinstance(node.op, ast.UAdd):
                return self.visit(node.operand)
            raise self.fail(f"operator {_BAD_OPS[type(node.op)]} is not allowed", node)
        if isinstance(node, ast.BinOp):
            return self.binop(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Attribute):
            raise self.fail(f"attribute access '.{node.attr}' is not allowed", node)
        what = _BAD_NODES.get(type(node), type(node).__name__)
        raise self.fail(f"{what} is not allowed: {self.snippet(node)!r}", node)

    def number(self, node: ast.Constant) -> _Node:
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            kind = "string" if isinstance(v, (str, bytes)) else type(v).__name__
            raise self.fail(f"{kind} literal {self.snippet(node)!r} is not allowed", node)
        try:
            value = float(v)
        except OverflowError:
            value = math.inf
        if not math.isfinite(value):
            raise self.fail(f"number {self.snippet(node)!r} is too large", node)
        return _Node("num", _CONST, value=value)

    def name(self, node: ast.Name) -> _Node:
        name = node.id
        if name == "x":
            return _Node("x", _VECTOR)
        if name in _CONSTANTS:
            return _Node("num", _CONST, value=_CONSTANTS[name], name=name)
        m = _COORD.fullmatch(name)
        if m:
            return self.coord(int(m.group(1)), name, node)
        if name in _FUNCS or name in _REDUCTIONS:
            raise self.fail(f"'{name}' is a function; call it as {name}(...)", node)
        raise self.fail(f"unknown name '{name}'{_suggest(name)}", node)

    def coord(self, i: int, shown: str, node: ast.AST) -> _Node:
        if i >= self.dim:
            raise self.fail(f"{shown}: index {i} but dim is {self.dim}", node)
        return _Node("coord", _SAMPLE, index=i)

    def subscript(self, node: ast.Subscript) -> _Node:
        if not (isinstance(node.value, ast.Name) and node.value.id == "x"):
            raise self.fail(f"only x[integer] may be subscripted, not {self.snippet(node)!r}", node)
        idx = node.slice
        if not (isinstance(idx, ast.Constant) and type(idx.value) is int):
            raise self.fail(f"the index in {self.snippet(node)!r} must be a non-negative "
                            "integer literal", node)
        return self.coord(idx.value, self.snippet(node), node)

    def binop(self, node: ast.BinOp) -> _Node:
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise self.fail(f"operator {_BAD_OPS[type(node.op)]} is not allowed", node)
        if op == "**":
            # Literal exponents are bounded so that no intent of 10**10**10 survives review.
            lit = _literal(node.right)
            if lit is not None and abs(lit) > MAX_EXPONENT:
                raise self.fail(f"exponent {self.snippet(node.right)} is larger than "
                                f"{MAX_EXPONENT} in magnitude", node.right)
        left, right = self.visit(node.left), self.visit(node.right)
        return _Node(op, max(left.kind, right.kind), (left, right))

    def call(self, node: ast.Call) -> _Node:
        if not isinstance(node.func, ast.Name):
            if isinstance(node.func, ast.Attribute):
                raise self.fail(f"attribute access '.{node.func.attr}' is not allowed", node.func)
            raise self.fail(f"calling {self.snippet(node.func)!r} is not allowed", node)
        name = node.func.id
        if name not in _FUNCS and name not in _REDUCTIONS:
            if name == "x" or name in _CONSTANTS or _COORD.fullmatch(name):
                raise self.fail(f"'{name}' is not a function", node)
            raise self.fail(f"unknown function '{name}'{_suggest(name)}", node)
        if node.keywords:
            raise self.fail(f"{name}() takes no keyword arguments", node)
        if len(node.args) != 1:
            raise self.fail(f"{name}() takes exactly 1 argument, got {len(node.args)}", node)
        arg = self.visit(node.args[0])
        if name in _FUNCS:
            return _Node(name, arg.kind, (arg,))
        if arg.kind != _VECTOR:
            raise self.fail(f"{name}() reduces over the input dimension, so its argument must "
                            f"involve the whole vector x, not {self.snippet(node.args[0])!r}", node)
        return _Node(name, _SAMPLE, (arg,))


def _depth(root: ast.AST) -> int:
    # Iterative on purpose: a recursive walk is what a nesting bomb would target.
    deepest, stack = 0, [(root, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > MAX_DEPTH:
            break
        for child in ast.iter_child_nodes(node):
            stack.append((child, d + 1 if isinstance(child, ast.expr) else d))
    return deepest


def _literal(node: ast.AST) -> float | None:
    sign = 1.0
    while isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        sign = -sign if isinstance(node.op, ast.USub) else sign
        node = node.operand
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
            and not isinstance(node.value, bool):
        try:
            return sign * float(node.value)
        except OverflowError:
            return math.inf
    return None


def _suggest(name: str) -> str:
    close = difflib.get_close_matches(name, _NAMES, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _eval(node: _Node, x: torch.Tensor) -> torch.Tensor:
    op = node.op
    if op == "num":
        return torch.tensor(node.value, dtype=x.dtype, device=x.device)
    if op == "x":
        return x
    if op == "coord":
        return x[:, node.index]
    if op == "neg":
        return -_eval(node.args[0], x)
    if op in _FUNCS:
        return _FUNCS[op](_eval(node.args[0], x))
    if op in _REDUCTIONS:
        return _REDUCTIONS[op](_eval(node.args[0], x))
    a, b = (_eval(arg, x) for arg in node.args)
    # A per-sample value meeting a [n, dim] one broadcasts across coordinates, not samples.
    if node.args[0].kind == _SAMPLE and node.args[1].kind == _VECTOR:
        a = a[:, None]
    if node.args[1].kind == _SAMPLE and node.args[0].kind == _VECTOR:
        b = b[:, None]
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a / b
    return torch.pow(a, b)


# LaTeX precedence levels; a child binding looser than its slot needs is parenthesised.
_ADD, _NEG, _MUL, _POW, _ATOM = 1, 2, 3, 4, 5
_LATEX_FUNCS = {"sin": r"\sin", "cos": r"\cos", "tan": r"\tan", "tanh": r"\tanh",
                "log": r"\log", "sigmoid": r"\sigma", "relu": r"\operatorname{relu}",
                "sign": r"\operatorname{sign}"}
_POWER_PREFIX = {"sin", "cos", "tan", "tanh", "log"}  # written \sin^2(a), as in textbooks
_INDICES = "ijklm"


def _paren(s: str) -> str:
    if "\\frac" in s or "\\sum" in s or "\\prod" in s:
        return rf"\left({s}\right)"
    return f"({s})"


def _fmt_number(v: float) -> str:
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    s = repr(v)
    if "e" not in s:
        return s
    mant, exp = s.split("e")
    power = f"10^{{{int(exp)}}}"
    return power if mant in ("1", "1.0") else rf"{mant} \times {power}"


def _sup(s: str) -> str:
    return f"^{s}" if len(s) == 1 else f"^{{{s}}}"


def _is_symbol(n: _Node) -> bool:
    if n.op == "**":
        return _is_symbol(n.args[0])
    return n.op in ("x", "coord") or (n.op == "num" and bool(n.name))


def _is_number(n: _Node) -> bool:
    if n.op == "neg":
        return _is_number(n.args[0])
    return n.op == "num" and not n.name


def _latex(n: _Node, dim: int, depth: int) -> tuple[str, int, bool]:
    """Return (latex, precedence, open); open means it ends in a big operator that would
    swallow anything written after it, so it must be bracketed when not last."""
    op = n.op
    if op == "num":
        if n.name:
            return (r"\pi" if n.name == "pi" else "e"), _ATOM, False
        s = _fmt_number(n.value)
        return s, (_MUL if "\\times" in s else _POW if "^" in s else _ATOM), False
    if op == "x":
        i = _INDICES[depth - 1] if depth <= len(_INDICES) else f"{{i_{{{depth}}}}}"
        return f"x_{i}", _ATOM, False
    if op == "coord":
        return f"x_{{{n.index}}}", _ATOM, False
    if op == "neg":
        s, p, is_open = _latex(n.args[0], dim, depth)
        if p <= _NEG:
            s, is_open = _paren(s), False
        return f"-{s}", _NEG, is_open
    if op in _REDUCTIONS:
        i = _INDICES[depth] if depth < len(_INDICES) else f"i_{{{depth + 1}}}"
        s, p, _ = _latex(n.args[0], dim, depth + 1)
        if p <= _ADD:
            s = _paren(s)
        head = {"sum": rf"\sum_{{{i}=1}}^{{{dim}}}",
                "mean": rf"\frac{{1}}{{{dim}}}\sum_{{{i}=1}}^{{{dim}}}",
                "prod": rf"\prod_{{{i}=1}}^{{{dim}}}"}.get(op, rf"\{op}_{{1 \le {i} \le {dim}}}")
        return f"{head} {s}", _MUL, True
    if op in _FUNCS:
        s, _, _ = _latex(n.args[0], dim, depth)
        if op == "exp":
            return f"e^{{{s}}}", _POW, False
        if op == "sqrt":
            return rf"\sqrt{{{s}}}", _ATOM, False
        if op == "abs":
            return rf"\left|{s}\right|", _ATOM, False
        return f"{_LATEX_FUNCS[op]}({s})", _ATOM, False
    left, right = n.args
    if op == "/":
        a, b = _latex(left, dim, depth)[0], _latex(right, dim, depth)[0]
        return rf"\frac{{{a}}}{{{b}}}", _ATOM, False
    if op == "**":
        k = right.value if right.op == "num" and not right.name else 0.0
        if left.op in _POWER_PREFIX and k.is_integer() and 2 <= k <= 9:
            arg = _latex(left.args[0], dim, depth)[0]
            return f"{_LATEX_FUNCS[left.op]}^{int(k)}({arg})", _POW, False
        a, p, _ = _latex(left, dim, depth)
        if p < _ATOM:
            a = _paren(a)
        return a + _sup(_latex(right, dim, depth)[0]), _POW, False
    a, pa, open_a = _latex(left, dim, depth)
    b, pb, open_b = _latex(right, dim, depth)
    mine = _ADD if op in "+-" else _MUL
    if pa < (_ADD if mine == _ADD else _NEG) or open_a:
        a = _paren(a)
    if pb < _MUL:
        b, open_b = _paren(b), False
    if op == "*":
        joined = f"{a} {b}" if _is_number(left) and _is_symbol(right) else rf"{a} \cdot {b}"
        return joined, _MUL, open_b
    return f"{a} {op} {b}", _ADD, open_b


@dataclass(frozen=True)
class Formula:
    """A validated target formula over inputs x of shape [n, dim]."""

    text: str
    dim: int
    _tree: _Node | None = field(default=None, kw_only=True, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._tree is None:
            object.__setattr__(self, "_tree", _compile(self.text, self.dim, "data.formula"))

    def evaluate(self, x: torch.Tensor) -> torch.Tensor:
        """Map x [n, dim] (floating point) to y [n] of the same dtype."""
        if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != self.dim:
            shape = list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"formula {self.text!r} expects x of shape [n, {self.dim}], "
                             f"got {shape}")
        if not x.is_floating_point():
            raise ValueError(f"formula {self.text!r} expects floating-point x, got {x.dtype}")
        assert self._tree is not None
        y = _eval(self._tree, x)
        return y.expand(x.shape[0]).clone() if y.ndim == 0 else y

    def to_latex(self) -> str:
        """LaTeX for a config table, e.g. ``\\sum_{i=1}^{10} \\sin^2(10 x_i)``."""
        assert self._tree is not None
        return _latex(self._tree, self.dim, 0)[0]


def _compile(text: str, dim: int, fld: str) -> _Node:
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ConfigError("dim", dim, "a positive integer", f"the input dimension for {fld}")
    if not isinstance(text, str):
        raise ConfigError(fld, text, _allowed(dim), f"expected a string, got {type(text).__name__}")
    return _Compiler(text, dim, fld).compile()


def parse_formula(text: str, dim: int, field: str = "data.formula") -> Formula:
    """Parse and validate ``text`` for inputs of dimension ``dim``; raise ConfigError
    naming ``field`` and the offending piece when it is not a valid formula."""
    return Formula(text, dim, _tree=_compile(text, dim, field))
