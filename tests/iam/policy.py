"""A small IAM identity-policy evaluator: enough of AWS's rules to decide one request
against one role's statements, and strict about the rest (an operator or a policy
element it does not know is an error, never a silent match).

What it evaluates, as AWS documents it ("Policy evaluation logic", "IAM JSON policy
elements: Condition operators", "Condition keys with multiple values"):
- Action / NotAction with `*` and `?` wildcards, case-insensitive;
- Resource / NotResource with wildcards, case-sensitive;
- Condition: String{Equals,NotEquals,Like,NotLike} (with IfExists), Null, and the set
  qualifiers ForAllValues: / ForAnyValue: for multivalued keys. Every operator of a
  statement's Condition and every key under it must hold (AND); the values listed for
  one key are alternatives (OR).
- ForAllValues over a key the request does not carry (or carries empty) is true, as on
  AWS: a statement that limits a multivalued key that way must also say
  `"Null": {key: "false"}`, or a request without the key passes it
  (`statement_holes` reports such statements).
- An explicit Deny wins over any Allow; no Allow is an implicit deny.

No library on PyPI does this for a request with context keys (policyuniverse expands
actions and ARNs, parliament lints, iam-ape summarises an account's permissions), so it
is kept here, small, with its own tests (test_policy.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

ALLOW, DENY, IMPLICIT = "allow", "explicit deny", "implicit deny"


@dataclass
class Request:
    action: str
    resource: str
    # Context keys: a list of strings each (single-valued keys are one-element lists).
    context: dict[str, list[str]] = field(default_factory=dict)

    def describe(self) -> str:
        keys = ", ".join(f"{k}={v}" for k, v in sorted(self.context.items()))
        return f"{self.action} on {self.resource}" + (f" [{keys}]" if keys else "")


def _wildcard(pattern: str, value: str, case_sensitive: bool) -> bool:
    """IAM's `*` (any run) and `?` (one character); nothing else is special."""
    regex = "".join(
        ".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern
    )
    flags = 0 if case_sensitive else re.IGNORECASE
    return re.fullmatch(regex, value, flags | re.DOTALL) is not None


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _matches(statement: dict, element: str, value: str, case_sensitive: bool) -> bool:
    """`element` (Action or Resource) or its `Not` form of `statement` against `value`."""
    for name, positive in ((element, True), ("Not" + element, False)):
        if name in statement:
            hit = any(_wildcard(p, value, case_sensitive) for p in _as_list(statement[name]))
            return hit == positive
    raise ValueError(f"a statement with neither {element} nor Not{element}: {statement}")


def matches_action(statement: dict, action: str) -> bool:
    return _matches(statement, "Action", action, False)


def matches_resource(statement: dict, resource: str) -> bool:
    return _matches(statement, "Resource", resource, True)


_STRING = {
    "StringEquals": lambda p, v: p == v,
    "StringNotEquals": lambda p, v: p != v,
    "StringLike": lambda p, v: _wildcard(p, v, True),
    "StringNotLike": lambda p, v: not _wildcard(p, v, True),
}
_NEGATED = {"StringNotEquals", "StringNotLike"}


def _one_value_matches(base: str, policy_values: list[str], value: str) -> bool:
    """One request value against the policy's alternatives: any matches (for a negated
    operator, none of the positive matches may hold)."""
    if base in _NEGATED:
        positive = "StringEquals" if base == "StringNotEquals" else "StringLike"
        return not any(_STRING[positive](p, value) for p in policy_values)
    return any(_STRING[base](p, value) for p in policy_values)


def condition_holds(operator: str, key: str, policy_values, request: Request) -> bool:
    policy_values = [str(v) for v in _as_list(policy_values)]
    present = key in request.context
    values = request.context.get(key, [])
    qualifier, _, base = operator.rpartition(":")
    if base == "Null":
        # "true": the key must be absent; "false": present (an empty set is absent).
        wanted_absent = [v.lower() == "true" for v in policy_values]
        absent = not values
        return any(absent == w for w in wanted_absent)
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    if base not in _STRING:
        raise ValueError(f"condition operator not supported here: {operator}")
    if qualifier == "ForAllValues":
        # True for an absent or empty key: every one of no values matches.
        return all(_one_value_matches(base, policy_values, v) for v in values)
    if qualifier == "ForAnyValue":
        return any(_one_value_matches(base, policy_values, v) for v in values)
    if qualifier:
        raise ValueError(f"condition qualifier not supported here: {operator}")
    if not present:
        return if_exists
    if len(values) != 1:
        raise ValueError(f"{key} has several values: use ForAllValues/ForAnyValue ({operator})")
    return _one_value_matches(base, policy_values, values[0])


def conditions_hold(statement: dict, request: Request) -> bool:
    for operator, keys in statement.get("Condition", {}).items():
        for key, policy_values in keys.items():
            if not condition_holds(operator, key, policy_values, request):
                return False
    return True


def statement_applies(statement: dict, request: Request) -> bool:
    return (
        matches_action(statement, request.action)
        and matches_resource(statement, request.resource)
        and conditions_hold(statement, request)
    )


def decide(statements: list[dict], request: Request) -> str:
    """ALLOW, DENY (an explicit Deny applies) or IMPLICIT (no Allow applies)."""
    applying = [s for s in statements if statement_applies(s, request)]
    if any(s["Effect"] == "Deny" for s in applying):
        return DENY
    if any(s["Effect"] == "Allow" for s in applying):
        return ALLOW
    return IMPLICIT


def statement_holes(statements: list[dict]) -> list[str]:
    """Allow statements that limit a key with ForAllValues but let a request without it
    through (no `Null: false` on that key)."""
    holes = []
    for s in statements:
        if s["Effect"] != "Allow":
            continue
        conditions = s.get("Condition", {})
        required = {
            k for k, v in conditions.get("Null", {}).items() if str(v).lower() == "false"
        }
        for operator, keys in conditions.items():
            if operator.startswith("ForAllValues:"):
                for key in keys:
                    if key not in required:
                        holes.append(f"{s.get('Sid', s)}: {operator} {key} without Null false")
    return holes


def glob_matches(pattern: str, value: str) -> bool:
    """Whether an IAM wildcard pattern matches a value (case-sensitive), for callers."""
    return _wildcard(pattern, value, True)


__all__ = [
    "ALLOW",
    "DENY",
    "IMPLICIT",
    "Request",
    "decide",
    "statement_holes",
    "glob_matches",
    "matches_action",
    "matches_resource",
]
