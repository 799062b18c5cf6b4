"""Stored definitions survive schema changes: a canonical, versioned storage form, compared
by meaning when a definition is loaded again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from marshmallow import fields

from app.core.refusals import Refused
from app.schemas.admin import DefinitionsSchema, InstanceSchema
from app.services import Services, canonical, definitions
from app.services.definitions import load_file
from app.store import keys
from tests.conftest import DEMO_FILE, DEMO_PASSWORDS


class GrownInstanceSchema(InstanceSchema):
    """The instance schema after a release that added one defaulted field."""

    jackpot_group = fields.String(load_default="main")


class GrownDefinitionsSchema(DefinitionsSchema):
    instances = fields.List(fields.Nested(GrownInstanceSchema), load_default=list)


@pytest.fixture
def grown_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(canonical, "SCHEMA", GrownInstanceSchema)
    monkeypatch.setattr(definitions, "DEFINITIONS_SCHEMA", GrownDefinitionsSchema)


async def load(gateway: Services, path: Path = DEMO_FILE) -> dict[str, Any]:
    return await load_file(gateway.admin, path, DEMO_PASSWORDS)


async def stored(gateway: Services, instance_id: str) -> dict[str, Any]:
    raw = await gateway.store.client.get(keys.instance_definition(instance_id))
    return json.loads(raw)  # type: ignore[no-any-return]


async def test_reloading_an_unchanged_file_after_the_schema_grew_changes_nothing(
    gateway: Services, cheap_passwords: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await load(gateway))["instances"] == {"created": 2}
    before = await stored(gateway, "daily-drop")
    assert before["storage_version"] == canonical.STORAGE_VERSION
    monkeypatch.setattr(canonical, "SCHEMA", GrownInstanceSchema)
    monkeypatch.setattr(definitions, "DEFINITIONS_SCHEMA", GrownDefinitionsSchema)
    assert (await load(gateway))["instances"] == {"unchanged": 2}
    assert await stored(gateway, "daily-drop") == before  # nothing rewritten
    # read back through today's schema, the new field has its default
    gateway.config.invalidate()
    assert (await gateway.config.get()).instances["daily-drop"]["jackpot_group"] == "main"


async def test_a_changed_meaning_is_still_a_conflict(
    gateway: Services, cheap_passwords: None, grown_schema: None, tmp_path: Path
) -> None:
    await load(gateway)
    changed = tmp_path / "changed.yaml"
    changed.write_text(DEMO_FILE.read_text().replace("name: Daily Drop", "name: Nightly Drop"))
    assert changed.read_text() != DEMO_FILE.read_text()
    with pytest.raises(Refused) as caught:
        await load(gateway, changed)
    assert caught.value.code == "INSTANCE_EXISTS"
    grown = tmp_path / "grown.yaml"  # the new field set to something else than its default
    grown.write_text(
        DEMO_FILE.read_text().replace(
            "name: Daily Drop", "name: Daily Drop\n    jackpot_group: side"
        )
    )
    with pytest.raises(Refused):
        await load(gateway, grown)


async def test_a_definition_stored_before_the_versioned_form_reads_the_same(
    gateway: Services, cheap_passwords: None
) -> None:
    await load(gateway)
    body = (await stored(gateway, "daily-drop"))["definition"]
    await gateway.store.client.set(keys.instance_definition("daily-drop"), json.dumps(body))
    assert (await load(gateway))["instances"] == {"unchanged": 2}
    gateway.config.invalidate()
    assert (await gateway.config.get()).instances["daily-drop"]["name"] == body["name"]
