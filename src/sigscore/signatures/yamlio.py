"""YAML with line numbers: a safe loader whose mappings and lists remember where they stood.

Shared by signature files and index definitions, so that every
:class:`~sigscore.errors.SignatureError` can say ``file:line``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from ..errors import SignatureError


@dataclass(frozen=True)
class Where:
    """Where a value came from, for messages: ``file:line`` (either part may be unknown)."""

    file: str | None = None
    line: int | None = None

    def at(self, line: int | None) -> Where:
        return Where(self.file, line if line is not None else self.line)

    def __str__(self) -> str:
        if self.file and self.line:
            return f"{self.file}:{self.line}"
        if self.file:
            return self.file
        if self.line:
            return f"line {self.line}"
        return ""


def located_error(message: str, where: Where | None = None, **detail: Any) -> SignatureError:
    where = where or Where()
    prefix = f"{where}: " if str(where) else ""
    info = {"file": where.file, "line": where.line, **detail}
    return SignatureError(prefix + message, detail={k: v for k, v in info.items() if v is not None})


class LocDict(dict):
    """A dict that remembers the YAML line of itself and of each key."""

    line: int | None = None
    key_lines: dict[Any, int]

    def line_of(self, key: Any) -> int | None:
        return getattr(self, "key_lines", {}).get(key, self.line)


class LocList(list):
    """A list that remembers the YAML line of itself and of each item."""

    line: int | None = None
    item_lines: list[int]

    def line_of(self, i: int) -> int | None:
        lines = getattr(self, "item_lines", [])
        return lines[i] if i < len(lines) else self.line


class _DuplicateKey(Exception):
    def __init__(self, key: Any, first: int, second: int) -> None:
        super().__init__(key)
        self.key, self.first, self.second = key, first, second


class _LineLoader(yaml.SafeLoader):
    """Safe YAML loader whose mappings and sequences carry 1-based line numbers."""


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> Iterator[LocDict]:
    data = LocDict()
    data.line = node.start_mark.line + 1
    data.key_lines = {}
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in data:  # yaml silently keeps the last value; a typo'd copy is an error here
            raise _DuplicateKey(key, data.key_lines[key], line)
        data[key] = loader.construct_object(value_node, deep=True)
        data.key_lines[key] = line


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode) -> Iterator[LocList]:
    data = LocList()
    data.line = node.start_mark.line + 1
    data.item_lines = []
    yield data
    for child in node.value:
        data.append(loader.construct_object(child, deep=True))
        data.item_lines.append(child.start_mark.line + 1)


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def load_yaml_documents(text: str, file: str | None) -> list[Any]:
    """All documents of a YAML text, with line-aware containers; errors carry file:line."""
    loader = _LineLoader(text)
    docs: list[Any] = []
    try:
        while loader.check_data():
            docs.append(loader.get_data())
    except _DuplicateKey as exc:
        raise located_error(
            f"key {exc.key!r} appears twice in one mapping (lines {exc.first} and {exc.second}); "
            "keep one",
            Where(file, exc.second),
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        detail = f"{problem} ({context})" if context else problem
        raise located_error(f"malformed YAML: {detail}", Where(file, line)) from None
    finally:
        loader.dispose()
    return docs


def line_of(obj: Any, key: Any = None) -> int | None:
    if isinstance(obj, LocDict):
        return obj.line_of(key) if key is not None else obj.line
    if isinstance(obj, LocList):
        return obj.line_of(key) if isinstance(key, int) else obj.line
    return None
