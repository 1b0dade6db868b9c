"""PDDL domains and problems: STRIPS, ``:typing`` and ``:negative-preconditions``.

Semantics follow the Proc2PDDL evaluator (pucrs ``pddl-parser``): text is lowercased, ``;``
comments dropped; predicates and types used in actions need not be declared (the gold domains
rely on it); unknown top-level sections are ignored; preconditions, effects and goals are a
literal or an ``and`` of literals. Every error names where it is: ``line L, column C`` in the
file and, inside an action, the action's name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SUPPORTED_REQUIREMENTS = (":strips", ":negative-preconditions", ":typing")
_TOKEN = re.compile(r"[()]|[^\s()]+")

Atom = tuple[str, ...]


class PDDLParseError(ValueError):
    """A PDDL text that cannot be read; ``where`` says where (file, line/column, action)."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


@dataclass
class Sexp:
    """A parenthesised list with the position of its ``(``."""

    items: list[str | Sexp]
    line: int
    column: int


@dataclass(frozen=True)
class Action:
    name: str
    parameters: tuple[tuple[str, str], ...]  # (variable, type), in order
    pre_pos: tuple[Atom, ...]
    pre_neg: tuple[Atom, ...]
    add: tuple[Atom, ...]
    delete: tuple[Atom, ...]


@dataclass
class Domain:
    name: str
    requirements: tuple[str, ...] = ()
    types: dict[str, list[str]] = field(default_factory=dict)  # supertype -> subtypes
    constants: dict[str, list[str]] = field(default_factory=dict)  # type -> objects
    predicates: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    actions: list[Action] = field(default_factory=list)

    def action(self, name: str) -> Action | None:
        return next((a for a in self.actions if a.name == name), None)


@dataclass
class Problem:
    name: str
    domain_name: str
    objects: dict[str, list[str]]  # type -> objects, declaration order (domain constants first)
    init: frozenset[Atom]
    goal_pos: tuple[Atom, ...]
    goal_neg: tuple[Atom, ...]


class _Reader:
    """Parses one file's text; ``label`` (a file name) prefixes every error position."""

    def __init__(self, text: str, label: str) -> None:
        self.label = label
        self.action: str | None = None
        self.tree = self._scan(text)

    # -- errors -------------------------------------------------------------------------------

    def error(self, node: Sexp | None, message: str) -> PDDLParseError:
        where = self.label
        if node is not None:
            where += f" line {node.line}, column {node.column}"
        if self.action:
            where += f" (action {self.action})"
        return PDDLParseError(where, message)

    # -- tokens -------------------------------------------------------------------------------

    def _scan(self, text: str) -> Sexp:
        stack: list[Sexp] = []
        top: list[Sexp | str] = []
        for number, raw in enumerate(text.lower().splitlines(), 1):
            line = raw.split(";", 1)[0]
            for match in _TOKEN.finditer(line):
                token, column = match.group(), match.start() + 1
                if token == "(":
                    stack.append(Sexp([], number, column))
                elif token == ")":
                    if not stack:
                        where = Sexp([], number, column)
                        raise self.error(where, "')' without a matching '('")
                    done = stack.pop()
                    (stack[-1].items if stack else top).append(done)
                elif stack:
                    stack[-1].items.append(token)
                else:
                    raise self.error(Sexp([], number, column), f"{token!r} outside parentheses")
        if stack:
            raise self.error(stack[-1], "'(' is never closed (missing ')')")
        if len(top) != 1 or not isinstance(top[0], Sexp):
            where = top[1] if len(top) > 1 and isinstance(top[1], Sexp) else None
            raise self.error(where, f"expected one (define ...) expression, found {len(top)}")
        return top[0]

    # -- shared pieces ------------------------------------------------------------------------

    def expect_list(self, item: str | Sexp, parent: Sexp, what: str) -> Sexp:
        if not isinstance(item, Sexp):
            raise self.error(parent, f"expected a parenthesised {what}, found {item!r}")
        return item

    def typed_list(self, node: Sexp, items: list[str | Sexp], what: str) -> list[tuple[str, str]]:
        """``a b - t c`` -> [(a, t), (b, t), (c, object)]."""
        out: list[tuple[str, str]] = []
        pending: list[str] = []
        i = 0
        while i < len(items):
            item = items[i]
            if not isinstance(item, str):
                raise self.error(item, f"unexpected '(' in {what}")
            if item == "-":
                if not pending or i + 1 >= len(items) or not isinstance(items[i + 1], str):
                    raise self.error(node, f"'-' in {what} must follow names and precede a type")
                kind = items[i + 1]
                out += [(name, kind) for name in pending]  # type: ignore[misc]
                pending = []
                i += 2
                continue
            pending.append(item)
            i += 1
        return out + [(name, "object") for name in pending]

    def literals(self, node: str | Sexp, parent: Sexp, what: str) -> tuple[list[Atom], list[Atom]]:
        """A literal or ``(and literal...)`` -> (positive atoms, negated atoms)."""
        node = self.expect_list(node, parent, what)
        if not node.items:
            return [], []
        parts = node.items[1:] if node.items[0] == "and" else [node]
        pos: list[Atom] = []
        neg: list[Atom] = []
        for part in parts:
            part = self.expect_list(part, node, f"literal in {what}")
            if part.items and part.items[0] == "not":
                if len(part.items) != 2:
                    raise self.error(part, f"(not ...) in {what} takes exactly one atom")
                neg.append(self.atom(part.items[1], part, what))
            else:
                pos.append(self.atom(part, node, what))
        return pos, neg

    def atom(self, node: str | Sexp, parent: Sexp, what: str) -> Atom:
        node = self.expect_list(node, parent, f"atom in {what}")
        if not node.items:
            raise self.error(node, f"empty atom () in {what}")
        for item in node.items:
            if not isinstance(item, str):
                head = node.items[0] if isinstance(node.items[0], str) else "..."
                raise self.error(
                    node, f"({head} ...) in {what}: only STRIPS literals (atom or not atom)"
                )
        return tuple(node.items)  # type: ignore[arg-type]

    def header(self, kind: str) -> list[Sexp]:
        """Check ``(define (<kind> name) ...)``; return the sections, first being the name."""
        items = self.tree.items
        if not items or items[0] != "define":
            raise self.error(self.tree, f"a {kind} file starts with (define ({kind} <name>) ...)")
        sections = []
        for item in items[1:]:
            section = self.expect_list(item, self.tree, "section")
            if not section.items or not isinstance(section.items[0], str):
                raise self.error(section, "a section starts with its keyword, e.g. (:predicates")
            sections.append(section)
        if not sections or sections[0].items[0] != kind or len(sections[0].items) != 2:
            raise self.error(self.tree, f"the first section must be ({kind} <name>)")
        return sections


def parse_domain(text: str, label: str = "domain") -> Domain:
    """A domain from PDDL text; ``label`` names the file in errors."""
    reader = _Reader(text, label)
    sections = reader.header("domain")
    domain = Domain(name=str(sections[0].items[1]))
    for section in sections[1:]:
        key, body = section.items[0], section.items[1:]
        if key == ":requirements":
            for req in body:
                if req not in SUPPORTED_REQUIREMENTS:
                    supported = " ".join(SUPPORTED_REQUIREMENTS)
                    raise reader.error(section, f"requirement {req} not supported ({supported})")
            domain.requirements = tuple(str(r) for r in body)
        elif key == ":types":
            for name, parent in reader.typed_list(section, body, "types"):
                domain.types.setdefault(parent, []).append(name)
        elif key == ":constants":
            for name, kind in reader.typed_list(section, body, "constants"):
                domain.constants.setdefault(kind, []).append(name)
        elif key == ":predicates":
            for item in body:
                pred = reader.expect_list(item, section, "predicate")
                if not pred.items or not isinstance(pred.items[0], str):
                    raise reader.error(pred, "a predicate starts with its name")
                if pred.items[0] in domain.predicates:
                    raise reader.error(pred, f"predicate {pred.items[0]} declared twice")
                args = reader.typed_list(pred, pred.items[1:], f"predicate {pred.items[0]}")
                domain.predicates[pred.items[0]] = tuple(args)
        elif key == ":action":
            action = _action(reader, section)
            if domain.action(action.name):
                raise reader.error(section, f"action {action.name} defined twice")
            domain.actions.append(action)
        # other sections (e.g. :derived) are ignored, as the reference evaluator does
    return domain


def parse_action(text: str, label: str = "action") -> Action:
    """One ``(:action ...)`` block on its own (used to compare actions of a broken domain)."""
    reader = _Reader(text, label)
    if not reader.tree.items or reader.tree.items[0] != ":action":
        raise reader.error(reader.tree, "expected (:action <name> ...)")
    return _action(reader, reader.tree)


def _action(reader: _Reader, node: Sexp) -> Action:
    reader.action = None
    if len(node.items) < 2 or not isinstance(node.items[1], str):
        raise reader.error(node, "(:action needs a name")
    name = node.items[1]
    reader.action = name
    fields: dict[str, str | Sexp] = {}
    rest = node.items[2:]
    for i in range(0, len(rest), 2):
        key = rest[i]
        if key not in (":parameters", ":precondition", ":effect"):
            raise reader.error(node, f"unexpected {key!r}; an action has :parameters, "
                                     ":precondition and :effect")  # fmt: skip
        if i + 1 >= len(rest):
            raise reader.error(node, f"{key} has no value")
        fields[str(key)] = rest[i + 1]
    params: list[tuple[str, str]] = []
    if ":parameters" in fields:
        plist = reader.expect_list(fields[":parameters"], node, ":parameters")
        params = reader.typed_list(plist, plist.items, ":parameters")
    pre = reader.literals(fields.get(":precondition", Sexp([], 0, 0)), node, ":precondition")
    eff = reader.literals(fields.get(":effect", Sexp([], 0, 0)), node, ":effect")
    reader.action = None
    return Action(
        name=name,
        parameters=tuple(params),
        pre_pos=tuple(dict.fromkeys(pre[0])),
        pre_neg=tuple(dict.fromkeys(pre[1])),
        add=tuple(dict.fromkeys(eff[0])),
        delete=tuple(dict.fromkeys(eff[1])),
    )


def parse_problem(text: str, domain: Domain, label: str = "problem") -> Problem:
    """A problem for ``domain`` (whose constants come first among its objects)."""
    reader = _Reader(text, label)
    sections = reader.header("problem")
    objects: dict[str, list[str]] = {k: list(v) for k, v in domain.constants.items()}
    init: list[Atom] = []
    goal: tuple[list[Atom], list[Atom]] = ([], [])
    for section in sections[1:]:
        key, body = section.items[0], section.items[1:]
        if key == ":domain":
            if body != [domain.name]:
                found = " ".join(str(b) for b in body)
                raise reader.error(section, f"problem is for domain {found}, not {domain.name}")
        elif key == ":objects":
            for name, kind in reader.typed_list(section, body, "objects"):
                objects.setdefault(kind, []).append(name)
        elif key == ":init":
            init = [reader.atom(item, section, ":init") for item in body]
        elif key == ":goal":
            if len(body) != 1:
                raise reader.error(section, "(:goal ...) holds one literal or (and ...)")
            goal = reader.literals(body[0], section, ":goal")
    return Problem(
        name=str(sections[0].items[1]),
        domain_name=domain.name,
        objects=objects,
        init=frozenset(init),
        goal_pos=tuple(dict.fromkeys(goal[0])),
        goal_neg=tuple(dict.fromkeys(goal[1])),
    )
