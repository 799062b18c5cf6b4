"""Definitions files: read and validate one (YAML or JSON), and apply it through the admin
service. The CLI's `load` and the dev server's demo data both come through here."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from marshmallow import Schema

from app.schemas.admin import DefinitionsSchema
from app.services.admin.service import AdminService, environment_passwords

DEFINITIONS_SCHEMA: type[Schema] = DefinitionsSchema  # today's schema of a definitions file


def read_definitions(path: Path) -> dict[str, Any]:
    """The file's definitions, validated (raises ValidationError, yaml.YAMLError, OSError)."""
    text = path.read_text()
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a mapping of definitions")
    loaded: dict[str, Any] = DEFINITIONS_SCHEMA().load(data)
    return loaded


async def load_file(
    admin: AdminService, path: Path, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Apply a definitions file; account passwords come from the environment. Returns the
    summary per kind ({"instances": {"created": 1, "unchanged": 2}, ...})."""
    passwords = environment_passwords(os.environ if env is None else env)
    return await admin.apply(read_definitions(path), passwords)
