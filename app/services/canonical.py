"""Stored instance definitions: a canonical, versioned storage form, compared by meaning.

A definition is stored as `{"storage_version": 1, "definition": <the instance schema's
dump>}`. Reading one back passes it through today's schema, so a field added since (with a
default) takes its default and a stored definition stays equal in meaning to the same file
loaded again: reloading an unchanged file changes nothing, whatever the schema grew. A bare
dump (storage version 0, before this form) reads the same way.
"""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError

from app.schemas.admin import InstanceSchema

STORAGE_VERSION = 1
SCHEMA: type[Schema] = InstanceSchema  # today's instance schema


def to_storage(definition: dict[str, Any]) -> dict[str, Any]:
    """The storage form of a validated (loaded) definition."""
    return {"storage_version": STORAGE_VERSION, "definition": SCHEMA().dump(definition)}


def from_storage(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored definition as today's schema dumps it (new fields at their defaults)."""
    body: dict[str, Any] = stored["definition"] if "storage_version" in stored else stored
    schema = SCHEMA(unknown=EXCLUDE)
    try:
        current: dict[str, Any] = schema.dump(schema.load(body))
    except ValidationError:
        return body  # stored under older rules than today's: kept as stored
    return current


def same_meaning(stored: dict[str, Any], definition: dict[str, Any]) -> bool:
    """Whether a stored definition means the same as a validated one."""
    return from_storage(stored) == from_storage(to_storage(definition))
