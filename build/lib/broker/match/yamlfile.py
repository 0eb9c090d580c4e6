"""Read a rule file's YAML as plain data that remembers line numbers, and nothing else.

PyYAML's safe loader already refuses to build Python objects; on top of that this reader allows only the
core tags (mapping, list, text, integer, boolean, null, float), refuses anchors and aliases (no "billion
laughs"), merge keys and duplicate keys (which YAML would otherwise resolve silently by keeping the last).
Mappings and lists come back as ``LMap``/``LSeq`` carrying the 1-based line of themselves and their items.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_CORE + t for t in ("str", "int", "bool", "null", "float")}


class YamlProblem(Exception):
    """A file that is not acceptable YAML; ``line`` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class LMap(dict[Any, Any]):
    """A mapping that knows its line and the line of each key."""

    line: int
    key_lines: dict[Any, int]


class LSeq(list[Any]):
    """A list that knows its line and the line of each item."""

    line: int
    item_lines: list[int]


class _Loader(yaml.SafeLoader):
    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise YamlProblem(event.start_mark.line + 1, "YAML aliases (*name) are not allowed in rule files")
        event = self.peek_event()
        if getattr(event, "anchor", None):
            raise YamlProblem(event.start_mark.line + 1, "YAML anchors (&name) are not allowed in rule files")
        return super().compose_node(parent, index)  # type: ignore[no-any-return]


def load_yaml(text: str) -> Any:
    """Parse one YAML document into plain data with line numbers.

    Raises:
        YamlProblem: on a syntax error, a second document, or a disallowed construct.
    """
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        return None if node is None else _build(loader, node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise YamlProblem(line, f"not valid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise YamlProblem(1, f"not valid YAML: {exc}") from None
    finally:
        loader.dispose()


def _build(loader: _Loader, node: Node) -> Any:
    line = node.start_mark.line + 1
    if isinstance(node, ScalarNode):
        if node.tag == _CORE + "timestamp":
            raise YamlProblem(line, f"{node.value} reads as a date; dates are not values in rules "
                                    "(quote it if it is text)")
        if node.tag not in _SCALAR_TAGS:
            raise YamlProblem(line, f"YAML tag {node.tag!r} is not allowed in rule files")
        return loader.construct_object(node, deep=True)
    if isinstance(node, SequenceNode):
        if node.tag != _CORE + "seq":
            raise YamlProblem(line, f"YAML tag {node.tag!r} is not allowed in rule files")
        seq = LSeq(_build(loader, item) for item in node.value)
        seq.line = line
        seq.item_lines = [item.start_mark.line + 1 for item in node.value]
        return seq
    if isinstance(node, MappingNode):
        return _build_map(loader, node, line)
    raise YamlProblem(line, "unexpected YAML node")  # pragma: no cover


def _build_map(loader: _Loader, node: MappingNode, line: int) -> LMap:
    if node.tag != _CORE + "map":
        raise YamlProblem(line, f"YAML tag {node.tag!r} is not allowed in rule files")
    out = LMap()
    out.line = line
    out.key_lines = {}
    for key_node, value_node in node.value:
        key_line = key_node.start_mark.line + 1
        if key_node.tag == _CORE + "merge":
            raise YamlProblem(key_line, "YAML merge keys (<<) are not allowed in rule files")
        key = _build(loader, key_node)
        if not isinstance(key, str | int | bool):
            raise YamlProblem(key_line, "mapping keys must be plain words")
        if key in out:
            raise YamlProblem(key_line, f"key {key!r} appears twice in the same mapping")
        out[key] = _build(loader, value_node)
        out.key_lines[key] = key_line
    return out
