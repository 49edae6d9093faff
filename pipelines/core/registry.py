"""Config blocks chosen by their `type:`: one class per type, kept in one registry per kind of block.

`source:` and each entry of `sinks:` are discriminated unions whose members are registered, not
listed: a type registered later (a plugin, a test) is accepted without rebuilding any model, and an
unknown or missing `type:` is reported with the valid ones, with pydantic's tagged-union error kinds
(the config loader turns them into located problems).
"""
from __future__ import annotations

import typing
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel
from pydantic_core import PydanticCustomError, PydanticKnownError

M = TypeVar("M", bound=BaseModel)
C = TypeVar("C", bound=type)

_BY_BASE: dict[type, "TypeRegistry[Any]"] = {}


class TypeRegistry(Generic[M]):
    """The registered subclasses of `base`, by the value of their one-value `type: Literal[...]`."""

    def __init__(self, kind: str, base: type[M]):
        self.kind = kind  # as messages name it: "source", "sink"
        self.base = base
        self.classes: dict[str, type[M]] = {}
        _BY_BASE[base] = self

    def register(self, cls: C) -> C:
        """Register `cls` under its `type:` value; a class decorator."""
        tag = tag_of(cls)
        if self.classes.get(tag, cls) is not cls:
            raise ValueError(f"{self.kind} type {tag!r} is registered already, by {self.classes[tag].__name__}")
        self.classes[tag] = cls
        return cls

    def types(self) -> tuple[str, ...]:
        """The registered `type:` names, in registration order."""
        return tuple(self.classes)

    def get(self, tag: object) -> type[M] | None:
        """The class registered for a `type:` value, if any."""
        return self.classes.get(tag) if isinstance(tag, str) else None

    def validate(self, value: Any) -> M:
        """Dispatch a mapping on its `type:`; the chosen class's own errors stay located under it."""
        if isinstance(value, self.base):
            return value
        if not isinstance(value, dict):
            raise PydanticKnownError("model_attributes_type")
        context = {"kind": self.kind, "expected_tags": ", ".join(repr(t) for t in self.classes),
                   "types": _alternatives(list(self.classes))}
        if "type" not in value:
            raise PydanticCustomError("union_tag_not_found", "{kind} needs a 'type' ({types})", context)
        cls = self.get(value["type"])
        if cls is None:
            raise PydanticCustomError("union_tag_invalid", "unknown {kind} type {tag!r}; expected {expected_tags}",
                                      {**context, "tag": value["type"]})
        return cls.model_validate(value)


def registry_for(model: object) -> TypeRegistry[Any] | None:
    """The registry whose base class is `model` (a field typed by it takes any registered type)."""
    return _BY_BASE.get(model) if isinstance(model, type) else None


def tag_of(cls: type) -> str:
    """The value of a registered class's `type: Literal["name"]`."""
    field = getattr(cls, "model_fields", {}).get("type")
    args = typing.get_args(field.annotation) if field else ()
    if field is None or typing.get_origin(field.annotation) is not Literal or len(args) != 1:
        raise TypeError(f"{cls.__name__}.type must be a one-value Literal (the config's `type:`)")
    return str(args[0])


def _alternatives(names: list[str]) -> str:
    """'a', 'a or b', 'a, b or c'."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
