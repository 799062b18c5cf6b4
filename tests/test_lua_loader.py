"""The Lua loader: naming convention, headers, KEYS count check, error-code mapping."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.core.refusals import Code
from app.store import ScriptRefusal, Store
from app.store.script_table import SET_STATUS
from app.store.scripts import ScriptKeysError, load_scripts, lua_dir

# What a script may use anyway, with the words of its header that say why. Redis 7
# replicates a script's effects, not the script, so reading the store's clock is safe: the
# contribute script closes a raffle round's sales by it (issue 20), one clock for every web
# process.
ALLOWED = {("contribute", "TIME"): "store's clock (TIME)"}


def test_every_script_follows_the_naming_and_header_convention() -> None:
    scripts = load_scripts()
    assert scripts, "no Lua scripts found"
    for script in scripts.values():
        header = script.source.split("]]", 1)[0]
        assert script.source.startswith("--[["), f"{script.name} has no header comment"
        for i in range(1, script.nkeys + 1):
            assert f"KEYS[{i}]" in header, f"{script.name} header does not describe KEYS[{i}]"
        assert f"KEYS[{script.nkeys + 1}]" not in script.source, f"{script.name} uses extra KEYS"
        assert "Returns" in header and "Errors" in header, f"{script.name} header incomplete"
        for forbidden in ("math.random", "TIME", "cmsgpack", "bit.", "struct."):
            if (script.name, forbidden) in ALLOWED:
                assert ALLOWED[script.name, forbidden] in header, (script.name, forbidden)
                continue
            assert forbidden not in script.source.split("]]", 1)[1], (script.name, forbidden)


def test_every_error_code_in_lua_is_mirrored_in_python() -> None:
    codes: set[str] = set()
    for path in Path(lua_dir()).glob("*.lua"):
        codes |= set(re.findall(r"error_reply\('([A-Z_]+)", path.read_text()))
    assert codes, "no error codes found"
    assert codes <= set(Code.__members__), codes - set(Code.__members__)


def test_bad_file_names_are_refused(tmp_path: Path) -> None:
    (tmp_path / "noKeysCount.lua").write_text("return 1")
    with pytest.raises(ValueError, match="verb_noun"):
        load_scripts(tmp_path, table=None)


async def test_wrong_keys_count_is_refused_before_redis(store: Store) -> None:
    with pytest.raises(ScriptKeysError, match="takes 6 KEYS, got 1"):
        await store.script(SET_STATUS, ["only-one"], ["pause", 1, "me"])


async def test_error_reply_becomes_a_refusal_with_its_code(store: Store) -> None:
    with pytest.raises(ScriptRefusal) as caught:
        await store.set_status("missing", "pause", now_ms=1, by="test")
    assert caught.value.code is Code.INSTANCE_NOT_FOUND
    with pytest.raises(ScriptRefusal) as caught:
        await store.take_login_attempt("user", 5, 0)
    assert caught.value.code is Code.BAD_ARGUMENT


async def test_scripts_survive_a_script_flush(store: Store) -> None:
    assert await store.take_login_attempt("u", 5, 60_000) == (True, 1)
    await store.client.script_flush()
    assert await store.take_login_attempt("u", 5, 60_000) == (True, 2)


def test_includes_are_expanded_once_with_globs_and_nesting(tmp_path: Path) -> None:
    (tmp_path / "includes" / "parts").mkdir(parents=True)
    (tmp_path / "includes" / "base.lua").write_text("local BASE = 1\n")
    (tmp_path / "includes" / "parts" / "a.lua").write_text(
        '--- @include "includes/base.lua"\nlocal A = BASE\n'
    )
    (tmp_path / "includes" / "parts" / "b.lua").write_text("local B = 2\n")
    (tmp_path / "use_parts-1.lua").write_text(
        '--[[ header ]]\n--- @include "includes/base.lua"\n'
        '--- @include "includes/parts/*.lua"\nreturn A + B\n'
    )
    source = load_scripts(tmp_path, table=None)["use_parts"].source
    assert source.count("local BASE = 1") == 1  # named twice, pasted once
    assert source.index("local BASE") < source.index("local A =") < source.index("local B =")
    assert "@include" not in source
    (tmp_path / "broken-0.lua").write_text('--- @include "includes/missing.lua"\n')
    with pytest.raises(ValueError, match="matches no file"):
        load_scripts(tmp_path, table=None)


async def test_an_expanded_script_runs(store: Store) -> None:
    """The real scripts' includes expand into Lua that Redis (and fakeredis) accept."""
    scripts = load_scripts()
    assert "@include" not in scripts["contribute"].source
    assert "local function emit_event" in scripts["set_optin"].source
    assert await store.winners("nothing-here") == []  # read_wins-2.lua runs
