"""A trigger type is its two files, registered together, and never half.

The Python half is a module of app/triggers/, the Lua half the file of the same name in
lua/includes/triggers/; the contribute script's dispatch table is made from the Python registry
when the scripts load. The end-to-end tests copy the checkout (app/, lua/, workers/,
schedulers/) to a scratch directory, add the fixture type EveryNth (tests/fixtures/triggers/)
there, whole or half, and run the CLI or the web app from it in a subprocess.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import redis.asyncio as aredis

from app.schemas.admin import TriggerSchema
from app.store import Store
from app.store.embedded import free_port
from app.store.scripts import expand_includes, load_scripts, lua_dir
from app.triggers import TRIGGERS, TriggerRegistryError
from tests.conftest import DRAW_KEY, SECRET

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "triggers"
NO_CACHE = shutil.ignore_patterns("__pycache__", "*.pyc")


def checkout(tmp_path: Path, *, python: bool, lua: bool) -> Path:
    """A scratch copy of the code with EveryNth's Python half and/or Lua half added."""
    root = tmp_path / "checkout"
    for part in ("app", "lua", "workers", "schedulers"):
        shutil.copytree(ROOT / part, root / part, ignore=NO_CACHE)
    if python:
        shutil.copy(FIXTURE / "every_nth.py", root / "app" / "triggers" / "every_nth.py")
    if lua:
        shutil.copy(FIXTURE / "every_nth.lua", root / "lua" / "includes" / "triggers")
    return root


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python <args>` from the scratch checkout (its app first on the path), against a Redis
    port where nothing listens: a start that gets as far as the store fails differently."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), str(ROOT)]),
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "JWT_SECRET": SECRET,
        "DRAW_KEY": DRAW_KEY,
    }
    return subprocess.run(
        [sys.executable, *args], cwd=root, env=env, capture_output=True, text=True, timeout=60
    )


# -- the registry and the contribute script agree -------------------------------------------
def test_definitions_accept_exactly_the_types_the_contribute_script_dispatches() -> None:
    source = load_scripts()["contribute"].source
    dispatched = set(re.findall(r"^register\('([A-Za-z0-9]+)', \(function\(\)$", source, re.M))
    assert dispatched == set(TriggerSchema().fields) == set(TRIGGERS)
    for trigger in TRIGGERS.values():
        assert f"-- included from includes/triggers/{trigger.module}.lua" in source


@pytest.mark.parametrize("name", sorted(TRIGGERS))
def test_a_registered_type_without_its_lua_half_is_refused_at_load(
    tmp_path: Path, name: str
) -> None:
    lua = tmp_path / "lua"
    shutil.copytree(lua_dir(), lua)
    module = TRIGGERS[name].module
    (lua / "includes" / "triggers" / f"{module}.lua").unlink()
    with pytest.raises(TriggerRegistryError) as refused:
        load_scripts(lua)
    assert str(refused.value) == (
        f"trigger type {name} (app/triggers/{module}.py) has no Lua half: "
        f"lua/includes/triggers/{module}.lua is missing"
    )


def test_a_lua_half_without_its_type_is_refused_at_load(tmp_path: Path) -> None:
    lua = tmp_path / "lua"
    shutil.copytree(lua_dir(), lua)
    shutil.copy(FIXTURE / "every_nth.lua", lua / "includes" / "triggers")
    with pytest.raises(TriggerRegistryError, match=r"^lua/includes/triggers/every_nth\.lua is"):
        load_scripts(lua)


async def test_every_lua_half_returns_its_entry_and_a_bad_one_is_named(
    redis_url: str, store: Store, tmp_path: Path
) -> None:
    """On real Redis and fakeredis: the dispatch table holds every registered type; a Lua half
    that returns no {inputs, hit, reset} fails with its type's name."""
    probe = (
        '--- @include "includes/money.lua"\n--- @include "includes/triggers.lua"\n'
        "local names = {}\nfor name in pairs(TRIGGERS) do names[#names + 1] = name end\n"
        "table.sort(names)\nreturn names"
    )
    client: aredis.Redis = store.client
    names = await client.eval(expand_includes(probe, lua_dir()), 0)
    assert [n.decode() if isinstance(n, bytes) else n for n in names] == sorted(TRIGGERS)

    lua = tmp_path / "lua"
    shutil.copytree(lua_dir(), lua)
    first = TRIGGERS[min(TRIGGERS)]
    half = lua / "includes" / "triggers" / f"{first.module}.lua"
    half.write_text(half.read_text().replace("return {", "local entry = {", 1))
    with pytest.raises(Exception, match=f"trigger type {first.name} returns no"):
        await client.eval(expand_includes(probe, lua), 0)


# -- a new type end to end, in a scratch checkout ---------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("command", ["worker", "serve", "load"])
def test_a_python_half_alone_stops_the_cli_at_start(tmp_path: Path, command: str) -> None:
    root = checkout(tmp_path, python=True, lua=False)
    definitions = tmp_path / "definitions.json"
    definitions.write_text("{}")
    args = ["-m", "app.cli", command, *([str(definitions)] if command == "load" else [])]
    finished = run(root, *args)
    assert finished.returncode == 2, finished.stderr
    assert finished.stderr.splitlines() == [
        "error: refusing to start: trigger type EveryNth (app/triggers/every_nth.py) has no "
        "Lua half: lua/includes/triggers/every_nth.lua is missing"
    ]


@pytest.mark.slow
def test_a_python_half_alone_stops_the_web_app_at_start(tmp_path: Path) -> None:
    root = checkout(tmp_path, python=True, lua=False)
    finished = run(root, str(FIXTURE / "drive.py"))
    assert finished.returncode == 0, finished.stderr
    result = json.loads(finished.stdout)
    assert result["started"] is False, result
    assert result["error"].endswith(  # Quart's "Error during startup <the error>"
        "trigger type EveryNth (app/triggers/every_nth.py) has no Lua half: "
        "lua/includes/triggers/every_nth.lua is missing"
    )


@pytest.mark.slow
def test_a_new_trigger_type_is_its_two_files(tmp_path: Path) -> None:
    """EveryNth's two files and nothing else: the definition API validates its body, and every
    third contribution to its pot wins."""
    root = checkout(tmp_path, python=True, lua=True)
    finished = run(root, str(FIXTURE / "drive.py"))
    assert finished.returncode == 0, finished.stderr
    result = json.loads(finished.stdout)
    assert result["started"] is True, result
    assert result["triggers"] == sorted([*TRIGGERS, "EveryNth"])
    assert result["refused"] == {"n=0": 400, "unknown": 400}
    assert result["created"] == 201
    assert result["contributions"] == [[200, (i + 1) % 3 == 0] for i in range(6)]
