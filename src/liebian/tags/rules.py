"""The tag rule language: a safe subset of Python expressions, checked and evaluated without eval.

    orders_90d >= 3 and channel in ["wecom", "miniprogram"]
    not referred == 1 or (health_score < 40 and recency_days > 14)
    1 <= orders_total < 5

Allowed: comparisons (== != < <= > >=, chained), `in` / `not in` a list of literals, and / or /
not, parentheses, numbers, strings, true/false, and known feature names. Anything else — calls,
attributes, arithmetic, subscripts, unknown names — is rejected with the position (1-based column)
and the offending token. Rules are parsed with `ast` and evaluated by walking the tree over a
pandas DataFrame of features (vectorised), never by `eval`.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    np = lazy_import("numpy")
    pd = lazy_import("pandas")

from liebian.errors import Invalid

MAX_RULE_LENGTH = 2000
MAX_NUMBER = 1e15  # beyond it a comparison with a 64-bit feature column overflows

_OPS = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
}


class RuleError(Invalid, ValueError):
    """A rule that cannot be used; `position` is the 1-based column, `token` the offending text."""

    summary = "invalid rule"

    def __init__(self, rule: str, position: int, token: str, reason: str) -> None:
        self.rule, self.position, self.token, self.reason = rule, position, token, reason
        message = f"rule error at position {position} ({token!r}): {reason}"
        errors = [{"field": "rule", "reason": reason, "position": position, "token": token, "rule": rule}]
        super().__init__("invalid_rule", message, field="rule", errors=errors)

    def as_dict(self) -> dict:
        return {"position": self.position, "token": self.token, "reason": self.reason, "rule": self.rule}


@dataclass(frozen=True)
class Rule:
    text: str
    tree: ast.Expression
    features: frozenset[str]

    def evaluate(self, frame: pd.DataFrame) -> np.ndarray:
        """Boolean mask over the rows of `frame` (one row per person)."""
        return np.asarray(_eval(self.tree.body, frame), dtype=bool)


def _token(rule: str, node: ast.AST) -> str:
    seg = ast.get_source_segment(rule, node)
    return seg if seg is not None else type(node).__name__


def _fail(rule: str, node: ast.AST, reason: str) -> RuleError:
    return RuleError(rule, getattr(node, "col_offset", 0) + 1, _token(rule, node), reason)


def parse_rule(rule: str, features: dict[str, str]) -> Rule:
    """Parse and check a rule against the known features ({name: "number" | "string"})."""
    if not isinstance(rule, str) or not rule.strip():
        raise RuleError(str(rule), 1, "", "the rule is empty")
    if len(rule) > MAX_RULE_LENGTH:
        raise RuleError(rule, MAX_RULE_LENGTH, "", f"the rule is longer than {MAX_RULE_LENGTH} characters")
    if "\n" in rule or "\r" in rule:
        raise RuleError(
            rule, rule.find("\n") + 1 if "\n" in rule else rule.find("\r") + 1, "\\n", "one line only"
        )
    # true/false as in JSON; the Python spellings work too
    try:
        tree = ast.parse(rule.strip(), mode="eval")
    except SyntaxError as exc:
        text = rule.strip()
        if not exc.offset:  # Python reports offset 0 when the rule ends too early
            raise RuleError(
                rule, len(text) + 1, "end of rule", "the rule ends too early (a value is missing)"
            ) from None
        pos = exc.offset
        near = text[pos - 1 : pos + 9] or "end of rule"
        raise RuleError(rule, pos, near, f"syntax error: {exc.msg}") from None
    rule = rule.strip()
    used: set[str] = set()
    kind = _check(rule, tree.body, features, used, top=True)
    if kind != "bool":
        raise _fail(
            rule, tree.body, "a rule must be a condition (a comparison, or conditions joined by and/or)"
        )
    return Rule(rule, tree, frozenset(used))


def _literal(rule: str, node: ast.AST) -> str:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool):
            return "number"
        if isinstance(node.value, int | float):
            return _number(rule, node, node.value)
        if isinstance(node.value, str):
            return "string"
        raise _fail(rule, node, f"unsupported literal {node.value!r}")
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, int | float)
        and not isinstance(node.operand.value, bool)
    ):
        return _number(rule, node, node.operand.value)
    if isinstance(node, ast.Name) and node.id in ("true", "false"):
        return "number"
    raise _fail(rule, node, _NOT_ALLOWED.get(type(node), "expected a number or a string here"))


def _number(rule: str, node: ast.AST, value: float) -> str:
    """A number a feature column can be compared with: finite, within 64 bits."""
    if abs(value) > MAX_NUMBER or not math.isfinite(value):  # abs first: a huge int has no float
        raise _fail(rule, node, f"numbers in a rule lie between -{MAX_NUMBER:.0e} and {MAX_NUMBER:.0e}")
    return "number"


_NOT_ALLOWED = {
    ast.Call: "function calls are not allowed",
    ast.Attribute: "attribute access is not allowed",
    ast.BinOp: "arithmetic is not allowed; compare features with values",
    ast.Subscript: "indexing is not allowed",
    ast.Compare: "a comparison cannot be compared again; join conditions with and/or",
    ast.BoolOp: "a condition cannot be compared; join conditions with and/or",
}


def _operand(rule: str, node: ast.AST, features: dict[str, str], used: set[str]) -> tuple[str, str]:
    """('feature'|'literal'|'list', type) of a comparison operand."""
    if isinstance(node, ast.Name) and node.id not in ("true", "false"):
        if node.id not in features:
            known = ", ".join(sorted(features))
            raise _fail(rule, node, f"unknown feature {node.id!r}; known features: {known}")
        used.add(node.id)
        return "feature", features[node.id]
    if isinstance(node, ast.List | ast.Tuple):
        if not node.elts:
            raise _fail(rule, node, "an empty list matches nothing; list at least one value")
        types = {_literal(rule, e) for e in node.elts}
        if len(types) > 1:
            raise _fail(rule, node, "a list must hold only numbers or only strings")
        return "list", types.pop()
    return "literal", _literal(rule, node)


def _check(rule: str, node: ast.AST, features: dict[str, str], used: set[str], top: bool = False) -> str:
    if isinstance(node, ast.BoolOp):
        for value in node.values:
            if _check(rule, value, features, used) != "bool":
                raise _fail(rule, value, "each side of and/or must be a condition")
        return "bool"
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        if _check(rule, node.operand, features, used) != "bool":
            raise _fail(rule, node.operand, "not must be followed by a condition")
        return "bool"
    if isinstance(node, ast.Compare):
        left = _operand(rule, node.left, features, used)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            if type(op) not in _OPS:
                raise _fail(rule, comparator, "unsupported comparison (use == != < <= > >= in, not in)")
            right = _operand(rule, comparator, features, used)
            if isinstance(op, ast.In | ast.NotIn):
                if left[0] != "feature" or right[0] != "list":
                    raise _fail(
                        rule, comparator, "`in` needs a feature on the left and a [list] on the right"
                    )
            else:
                if right[0] == "list" or left[0] == "list":
                    raise _fail(rule, comparator, "a list can only follow `in` / `not in`")
                if left[0] != "feature" and right[0] != "feature":
                    raise _fail(rule, comparator, "a comparison needs a feature on one side")
                if isinstance(op, ast.Lt | ast.LtE | ast.Gt | ast.GtE) and "string" in (left[1], right[1]):
                    raise _fail(rule, comparator, "< <= > >= compare numbers only")
            if left[1] != right[1]:
                raise _fail(rule, comparator, f"type mismatch: {left[1]} compared with {right[1]}")
            left = right
        return "bool"
    if isinstance(node, ast.Name):
        if node.id in features:
            raise _fail(rule, node, f"compare the feature {node.id!r} with a value, e.g. {node.id} >= 1")
        return _operand(rule, node, features, used)[1]
    if type(node) in _NOT_ALLOWED:
        raise _fail(rule, node, _NOT_ALLOWED[type(node)])
    if isinstance(node, ast.Constant):
        raise _fail(rule, node, "a bare value is not a condition")
    raise _fail(rule, node, f"{type(node).__name__} is not allowed in a rule")


def _value(node: ast.AST, frame: pd.DataFrame):
    if isinstance(node, ast.Name):
        if node.id == "true":
            return 1
        if node.id == "false":
            return 0
        return frame[node.id].to_numpy()
    if isinstance(node, ast.Constant):
        return node.value
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, int | float)
    ):  # a negative number (checked)
        return -node.operand.value
    if isinstance(node, ast.List | ast.Tuple):
        return [_value(e, frame) for e in node.elts]
    raise TypeError(type(node).__name__)  # unreachable after _check


def _eval(node: ast.AST, frame: pd.DataFrame) -> np.ndarray:
    n = len(frame)
    if isinstance(node, ast.BoolOp):
        parts = [_eval(v, frame) for v in node.values]
        return np.logical_and.reduce(parts) if isinstance(node.op, ast.And) else np.logical_or.reduce(parts)
    if isinstance(node, ast.UnaryOp):
        return ~_eval(node.operand, frame)
    assert isinstance(node, ast.Compare)
    result = np.ones(n, dtype=bool)
    left = _value(node.left, frame)
    for op, comparator in zip(node.ops, node.comparators, strict=True):
        right = _value(comparator, frame)
        if isinstance(op, ast.In | ast.NotIn):
            hit = pd.Series(left).isin(right).to_numpy()
            part = hit if isinstance(op, ast.In) else ~hit
        else:
            with np.errstate(invalid="ignore"):
                part = {
                    ast.Eq: lambda a, b: a == b,
                    ast.NotEq: lambda a, b: a != b,
                    ast.Lt: lambda a, b: a < b,
                    ast.LtE: lambda a, b: a <= b,
                    ast.Gt: lambda a, b: a > b,
                    ast.GtE: lambda a, b: a >= b,
                }[type(op)](left, right)
            # a missing value (NaN, e.g. no churn model yet) satisfies no comparison, not even !=
            for side in (left, right):
                if isinstance(side, np.ndarray) and side.dtype.kind == "f":
                    part = np.asarray(part, dtype=bool) & ~np.isnan(side)
        result &= np.broadcast_to(np.asarray(part, dtype=bool), (n,))
        left = right
    return result
