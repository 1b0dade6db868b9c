"""Reading a recipe file: strict UTF-8, safe YAML, bounded, every failure naming file:line and key.

PyYAML's safe loader alone lets a recipe mean something other than what it says: a repeated key
silently replaces the first (at any depth), ``1e-3`` is a string (YAML 1.1 wants ``1.0e-3``),
``2026-01-01:`` or ``yes:`` as a key is a date or a boolean, and a few lines of aliases expand
to billions of nodes that the schema check then walks for ever. This loader composes the node
graph first and checks it before constructing any value: duplicate keys (both lines named),
non-string keys, nesting depth, and the size of the graph with every alias expanded.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_BYTES = 4 * 1024 * 1024  # recipes are a few KiB; a bigger file is a mistake
MAX_NODES = 100_000  # YAML nodes with every alias expanded (config/micro.yaml: ~200)
MAX_DEPTH = 64
STR_TAG = "tag:yaml.org,2002:str"
MERGE_TAG = "tag:yaml.org,2002:merge"
KEY_KINDS = {
    "tag:yaml.org,2002:timestamp": "a date",
    "tag:yaml.org,2002:bool": "a boolean",
    "tag:yaml.org,2002:int": "a number",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:null": "null",
}
# The float forms users write that YAML 1.1 leaves as strings: an exponent without a dot.
EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")


class RecipeError(ValueError):
    """A recipe (or one stage's config) is invalid; the message names every bad key path."""


class _Loader(yaml.SafeLoader):
    """The safe loader, plus ``1e-3``-style floats."""


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", EXPONENT_FLOAT, list("-+.0123456789"))


def key_path(parts: list[Any]) -> str:
    """``pretrain.model.num_heads``, ``sources.sft[0].path``; ``<top level>`` for none."""
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "<top level>"


def read_text(path: Path) -> str:
    """The file's text: strict UTF-8 (a UTF-8 BOM is allowed), within MAX_BYTES."""
    if path.is_dir():
        raise RecipeError(f"{path}: is a directory; give the recipe's YAML file")
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise RecipeError(f"{path}: file not found") from None
    except OSError as error:
        raise RecipeError(f"{path}: cannot be read ({error.strerror})") from None
    if len(data) > MAX_BYTES:
        raise RecipeError(f"{path}: larger than {MAX_BYTES // 2**20} MiB; a recipe is a few KiB")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data:
        raise RecipeError(
            f"{path}: is UTF-16 or UTF-32 encoded (or binary); save it as UTF-8 and run again"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise RecipeError(
            f"{path}:{line}: not UTF-8 (byte {data[error.start]:#04x} at offset {error.start}); "
            "save the file as UTF-8 and run again"
        ) from None


def load_yaml_file(path: Path) -> Any:
    """The single YAML document of ``path``, checked (see the module docstring)."""
    text = read_text(path)
    loader = None
    try:
        loader = _Loader(text)  # the reader refuses control characters here
        root = loader.get_single_node()
        if root is None:
            return None
        _check_graph(root, path)
        return loader.construct_document(root)
    except yaml.YAMLError as error:  # its marks say "<unicode string>": name the file
        where = str(error).replace('"<unicode string>"', str(path))
        raise RecipeError(f"{path}: not valid YAML: {where}") from None
    except RecursionError:
        raise RecipeError(f"{path}: nested too deeply (more than {MAX_DEPTH} levels)") from None
    finally:
        if loader is not None:
            loader.dispose()


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _check_graph(root: Node, path: Path) -> None:
    """Refuse duplicate or non-string keys, deep nesting, and alias expansion past MAX_NODES.

    Iterative over (node, key path, depth); a node reached again through an alias is counted
    with its expanded size (memoized), never walked twice, so a bomb is refused in linear time.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Node, list[Any], int, bool]] = [(root, [], 0, False)]
    while stack:
        node, parts, depth, done = stack.pop()
        ident = id(node)
        if done:  # every child has its size: this node's is 1 + theirs
            on_path.discard(ident)
            sizes[ident] = 1 + sum(sizes[id(child)] for _, child in _children(node))
            if sizes[ident] > MAX_NODES:
                raise RecipeError(
                    f"{path}:{_line(node)}: {key_path(parts)}: expands to more than "
                    f"{MAX_NODES} values (YAML aliases); write the values out or remove the "
                    "aliases"
                )
            continue
        if ident in sizes:
            continue
        if ident in on_path:
            raise RecipeError(
                f"{path}:{_line(node)}: {key_path(parts)}: an alias refers to a value that "
                "contains it (a recursive structure); remove the alias"
            )
        if depth > MAX_DEPTH:
            raise RecipeError(
                f"{path}:{_line(node)}: {key_path(parts)}: nested more than {MAX_DEPTH} levels"
            )
        if isinstance(node, MappingNode):
            _check_keys(node, parts, path)
        on_path.add(ident)
        stack.append((node, parts, depth, True))
        for part, child in _children(node):
            if id(child) not in sizes:
                stack.append(
                    (child, [*parts, part] if part is not None else parts, depth + 1, False)
                )


def _children(node: Node) -> list[tuple[Any, Node]]:
    """(key path part, child node) of a collection node; merge keys (``<<``) add no part."""
    if isinstance(node, SequenceNode):
        return list(enumerate(node.value))
    if isinstance(node, MappingNode):
        return [
            (None if key.tag == MERGE_TAG else key.value, value)
            for key, value in node.value
            if isinstance(key, ScalarNode)
        ]
    return []


def _check_keys(node: MappingNode, parts: list[Any], path: Path) -> None:
    """Every key a plain string, none given twice (both lines named)."""
    seen: dict[str, int] = {}
    for key, _ in node.value:
        if isinstance(key, ScalarNode) and key.tag == MERGE_TAG:
            continue
        if not isinstance(key, ScalarNode):
            raise RecipeError(
                f"{path}:{_line(key)}: {key_path(parts)}: a key is a list or mapping; keys are "
                "names (strings)"
            )
        if key.tag != STR_TAG:
            kind = KEY_KINDS.get(key.tag, f"of type {key.tag.rsplit(':', 1)[-1]}")
            raise RecipeError(
                f"{path}:{_line(key)}: {key_path([*parts, key.value])}: the key {key.value!r} "
                f'is read as {kind}, not a name; quote it ("{key.value}") or rename it'
            )
        if key.value in seen:
            raise RecipeError(
                f"{path}:{_line(key)}: {key_path([*parts, key.value])}: duplicate key (first "
                f"at line {seen[key.value]}); YAML would keep only the last: keep one and merge "
                "their values"
            )
        seen[key.value] = _line(key)
