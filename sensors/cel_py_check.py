"""Compile-time checks of the cel-python backend: celpy only parses, so this walks its Lark tree for
what cel-expr-python's type checker reports (undeclared names and functions, ``has()`` and macro
shapes, literal operand types, the static result type for ``result="bool"``)."""

from __future__ import annotations

import re
from typing import Any

import lark
from celpy.celparser import CELParseError

from sensors.cel import CelCompileError

__all__ = ["MACROS", "NUMERIC", "Checker", "Tree", "core", "name_of", "parse_error", "static_type"]

DECLARED = frozenset({"event", "data", "body", "header", "headers"})
TYPE_NAMES = frozenset(
    ["int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type"]
)
MACROS = frozenset(["all", "exists", "exists_one", "map", "filter"])
NAMESPACES = frozenset(["math", "strings", "optional", "cel", "base64"])  # functions only cel-expr-python has


def _results(**words: str) -> dict[str, str | None]:
    return {name: kind for kind, names in words.items() for name in names.split()}


# result types of the functions a user may call, for the checker and for result="bool" (None: dyn)
GLOBAL_RESULTS = _results(bool="has matches", int="size int", type="type", uint="uint", double="double")
GLOBAL_RESULTS |= _results(string="string", bytes="bytes", timestamp="timestamp", duration="duration")
GLOBAL_RESULTS |= {"bool": "bool", "dyn": None}
METHOD_RESULTS = _results(
    bool="contains startsWith endsWith matches all exists exists_one",
    list="map filter split",
    int="size indexOf lastIndexOf getFullYear getMonth getDayOfYear getDate getDayOfMonth getDayOfWeek"
    " getHours getMinutes getSeconds getMilliseconds",
    string="charAt lowerAscii upperAscii replace substring trim join format reverse",
)
_LITERALS = _results(int="INT_LIT", uint="UINT_LIT", double="FLOAT_LIT", string="STRING_LIT MLSTRING_LIT")
_LITERALS |= _results(bytes="BYTES_LIT", bool="BOOL_LIT", null_type="NULL_LIT")
NUMERIC = frozenset({"int", "uint", "double"})
Tree = lark.Tree[Any]
# ---------------------------------------------------------------- compile-time checks on celpy's Lark tree

_PASS_THROUGH = frozenset(
    {"expr", "conditionalor", "conditionaland", "relation", "addition", "multiplication"}
)
_PASS_THROUGH |= {"unary", "member", "primary"}
_OPERATORS = {"relation_eq": "_==_", "relation_ne": "_!=_", "relation_lt": "_<_", "relation_le": "_<=_"}
_OPERATORS |= {"relation_gt": "_>_", "relation_ge": "_>=_", "addition_add": "_+_", "addition_sub": "_-_"}
_OPERATORS |= {"multiplication_mul": "_*_", "multiplication_div": "_/_", "multiplication_mod": "_%_"}


def core(node: Any) -> Any:
    """The first node below a chain of single-child grammar levels (``expr -> ... -> primary``)."""
    while isinstance(node, lark.Tree) and node.data in _PASS_THROUGH and len(node.children) == 1:
        node = node.children[0]
    return node


def name_of(node: Any, child: int = 0) -> str:
    """The text of a tree's token child (an ``ident``'s name, a ``member_dot``'s field)."""
    return str(node.children[child].value)


def _args(node: Tree, first: int) -> list[Any]:
    """The expressions of a call's optional ``exprlist`` child."""
    return list(node.children[first].children) if len(node.children) > first else []


def _position(source: str, offset: int) -> tuple[int, int]:
    return source.count("\n", 0, offset) + 1, offset - source.rfind("\n", 0, offset)


class Checker:
    """Undeclared names, unknown functions and malformed macros, reported where cel-cpp reports them."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.errors: list[tuple[int, int, str]] = []

    def error(self, offset: int, message: str) -> None:
        self.errors.append((*_position(self.source, offset), message))

    def paren(self, token: lark.Token) -> int:
        """cel-cpp points at a call's ``(``."""
        return max(self.source.find("(", token.end_pos or 0), 0)

    def visit(self, node: Any, scope: frozenset[str]) -> None:
        if not isinstance(node, lark.Tree):
            return
        children: list[Any] = node.children
        match node.data:
            case "ident" if self.undeclared(children[0].value, scope):
                self.error(children[0].start_pos, f"undeclared reference to '{children[0].value}'")
            case "member_dot":
                path, base = [children[1].value], core(children[0])
                while isinstance(base, lark.Tree) and base.data == "member_dot":
                    path.insert(0, name_of(base, 1))
                    base = core(base.children[0])
                if (
                    isinstance(base, lark.Tree)
                    and base.data == "ident"
                    and self.undeclared(name_of(base), scope)
                ):
                    # like cel-cpp: ``a.b.c`` may name a qualified identifier; point at its last dot
                    name = ".".join([name_of(base), *path])
                    self.error(
                        self.source.rfind(".", 0, children[1].start_pos), f"undeclared reference to '{name}'"
                    )
                else:
                    self.visit(children[0], scope)
            case "ident_arg":
                self.call(children[0], _args(node, 1), scope)
            case "member_dot_arg":
                self.method(children[0], children[1], _args(node, 2), scope)
            case "dot_ident" | "dot_ident_arg" if node.data == "dot_ident_arg" or name_of(node) not in DECLARED:
                self.error(children[0].start_pos, f"undeclared reference to '.{name_of(node)}'")
            case "member_object":
                self.error(node.meta.start_pos, "message construction is not supported")
            case "relation" | "addition" | "multiplication" if len(children) == 2:
                self.operands(children[0], children[0].children[0], children[1])
                self.visit(children[0].children[0], scope)
                self.visit(children[1], scope)
            case _:
                for child in children:
                    self.visit(child, scope)

    @staticmethod
    def undeclared(name: str, scope: frozenset[str]) -> bool:
        return name not in scope and name not in DECLARED and name not in TYPE_NAMES

    def operands(self, operator: Tree, left: Any, right: Any) -> None:
        """Known operand types that differ, which cel-cpp rejects (``1 == 1.0``, ``1 + 1u``)."""
        symbol, types = _OPERATORS.get(operator.data), (static_type(left), static_type(right))
        if symbol and None not in types and types[0] != types[1] and set(types) != {"timestamp", "duration"}:
            offset = self.source.find(symbol.strip("_"), left.meta.end_pos)
            self.error(
                offset, f"found no matching overload for '{symbol}' applied to '({types[0]}, {types[1]})'"
            )

    def call(self, token: lark.Token, args: list[Any], scope: frozenset[str]) -> None:
        if token.value not in GLOBAL_RESULTS:
            self.error(self.paren(token), f"undeclared reference to '{token.value}'")
        elif token.value == "has" and (len(args) != 1 or core(args[0]).data != "member_dot"):
            offset = args[0].meta.start_pos if args else self.paren(token)
            self.error(offset, "has() argument must be a field selection")
        for arg in args:
            self.visit(arg, scope)

    def method(self, target: Any, token: lark.Token, args: list[Any], scope: frozenset[str]) -> None:
        name, root = token.value, core(target)
        namespace = name_of(root) if isinstance(root, lark.Tree) and root.data == "ident" else None
        if namespace in NAMESPACES and namespace not in scope:
            self.error(
                root.meta.start_pos, f"{namespace}.{name}() is not available on the cel-python backend"
            )
            return
        variable = core(args[0]) if args else None
        if name in MACROS and len(args) != 2:
            self.error(self.paren(token), f"{name}() takes 2 arguments on the cel-python backend")
        elif name in MACROS and not (isinstance(variable, lark.Tree) and variable.data == "ident"):
            self.error(args[0].meta.start_pos, f"{name}() variable name must be a simple identifier")
        elif name in MACROS:
            self.visit(target, scope)
            self.visit(args[1], scope | {name_of(variable)})
        else:
            if name not in METHOD_RESULTS:
                self.error(self.paren(token), f"undeclared reference to '{name}'")
            for child in (target, *args):
                self.visit(child, scope)


def static_type(node: Any) -> str | None:
    """The CEL type of an expression when it is known without data (None: dyn)."""
    node = core(node)
    if not isinstance(node, lark.Tree):
        return None
    children: list[Any] = node.children
    match node.data:
        case "literal":
            return _LITERALS.get(children[0].type)
        case "conditionalor" | "conditionaland" | "relation":
            return "bool"
        case "unary":
            return "bool" if children[0].data == "unary_not" else static_type(children[1])
        case "addition" | "multiplication":
            left, right = static_type(children[0].children[0]), static_type(children[1])
            return (
                left if left == right and left in NUMERIC | {"string", "bytes", "list", "duration"} else None
            )
        case "expr":
            then, otherwise = static_type(children[1]), static_type(children[2])
            return then if then == otherwise else None
        case "paren_expr":
            return static_type(children[0])
        case "list_lit" | "map_lit":
            return "list" if node.data == "list_lit" else "map"
        case "ident_arg":
            return GLOBAL_RESULTS.get(children[0].value)
        case "member_dot_arg":
            return METHOD_RESULTS.get(children[1].value)
        case _:
            return None


def parse_error(source: str, exc: CELParseError) -> CelCompileError:
    """celpy's Lark error worded as cel-cpp words it (``Syntax error: mismatched input 'x'``)."""
    cause, line, column = exc.__context__, exc.line, exc.column
    if isinstance(cause, lark.exceptions.UnexpectedToken) and cause.token.type == "$END":
        message = "Syntax error: mismatched input '<EOF>'"
        line, column = _position(source, len(source))
    elif isinstance(cause, lark.exceptions.UnexpectedToken):
        message = f"Syntax error: mismatched input '{cause.token.value}'"
    elif isinstance(cause, lark.exceptions.UnexpectedCharacters):
        message = f"Syntax error: token recognition error at: '{cause.char}'"
    else:
        message = (
            f"Syntax error: {str(exc.args[0]).strip().splitlines()[0] if exc.args else 'invalid expression'}"
        )
    if re.search(r"\.\s*\?|\[\s*\?", source):
        message += " (optional syntax .? and [?] is not available on the cel-python backend)"
    return CelCompileError(source, message, line, column)
