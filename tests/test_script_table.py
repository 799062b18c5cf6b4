"""The script table (app/store/script_table.py) against the scripts of lua/: the loader refuses
a script the table does not declare, a declared script without a file and a KEYS count other
than the file name's; each entry agrees with its script's header comment (KEYS[i], ARGV[i], a
variable ARGV tail) and with the refusal codes its Lua answers (includes expanded); the
reference page docs/scripts.md is what the table renders."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from app.core.refusals import Code
from app.store import Store
from app.store.script_page import render_markdown
from app.store.script_table import (
    BY_NAME,
    READ_WINS,
    SET_STATUS,
    TABLE,
    Key,
    ScriptSpec,
    check_table,
)
from app.store.scripts import ScriptArgsError, ScriptKeysError, load_scripts, lua_dir

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = load_scripts()

# A header entry: `  KEYS[i]  meaning` or `  ARGV[i]  meaning` at the header's indentation
# (two spaces); continuation lines are indented deeper. An ARGV index that is not a plain
# integer (`ARGV[2..]`, `ARGV[23 + 3i]`) describes a variable-length tail.
ENTRY = re.compile(r"^  (?P<kind>KEYS|ARGV)\[(?P<index>[^\]]+)\]\s+\S", re.MULTILINE)
REFUSAL = re.compile(r"error_reply\('([A-Z][A-Z0-9_]*)[ ']")


def header_of(spec: ScriptSpec) -> str:
    text = SCRIPTS[spec.name].path.read_text()
    assert text.startswith("--[["), f"{spec.file} has no header comment"
    return text.split("]]", 1)[0]


def described(header: str, kind: str) -> tuple[list[int], list[str]]:
    """The integer indexes of `kind` the header describes, in order, and the other indexes."""
    numbered, tails = [], []
    for match in ENTRY.finditer(header):
        if match.group("kind") == kind:
            index = match.group("index").strip()
            (numbered if index.isdigit() else tails).append(index)
    return [int(i) for i in numbered], tails


@pytest.mark.parametrize("spec", TABLE, ids=lambda spec: spec.name)
def test_the_table_agrees_with_the_script_header(spec: ScriptSpec) -> None:
    header = header_of(spec)
    keys, key_tails = described(header, "KEYS")
    assert keys == list(range(1, spec.nkeys + 1)), (spec.file, "KEYS[i] of the header", keys)
    assert not key_tails, (spec.file, key_tails)
    argv, argv_tails = described(header, "ARGV")
    assert argv == list(range(1, len(spec.argv) + 1)), (spec.file, "ARGV[i] of the header", argv)
    assert bool(argv_tails) == (spec.rest is not None), (spec.file, "variable ARGV", argv_tails)


@pytest.mark.parametrize("spec", TABLE, ids=lambda spec: spec.name)
def test_the_table_lists_exactly_the_refusals_the_script_answers(spec: ScriptSpec) -> None:
    source = SCRIPTS[spec.name].source  # with its includes expanded
    answered = set(REFUSAL.findall(source))
    assert answered <= set(Code.__members__), answered - set(Code.__members__)
    assert {code.value for code in spec.refusals} == answered, spec.file
    assert all(isinstance(code, Code) for code in spec.refusals)


def test_every_script_file_is_in_the_table_and_every_entry_has_its_file() -> None:
    files = {path.name for path in lua_dir().glob("*.lua")}
    assert files == {spec.file for spec in TABLE}
    assert set(BY_NAME) == {spec.name for spec in TABLE} and len(BY_NAME) == len(TABLE)


def copy_lua(tmp_path: Path) -> Path:
    directory = tmp_path / "lua"
    directory.mkdir(parents=True)
    (directory / "includes").symlink_to(lua_dir() / "includes")
    for path in lua_dir().glob("*.lua"):
        (directory / path.name).write_text(path.read_text())
    return directory


def test_a_script_file_the_table_does_not_declare_is_refused(tmp_path: Path) -> None:
    directory = copy_lua(tmp_path)
    assert load_scripts(directory).keys() == BY_NAME.keys()
    (directory / "read_nothing-1.lua").write_text("--[[ KEYS[1] x ]]\nreturn 1\n")
    with pytest.raises(ValueError, match=r"read_nothing-1\.lua is not declared"):
        load_scripts(directory)


def test_a_declared_script_without_its_file_is_refused(tmp_path: Path) -> None:
    directory = copy_lua(tmp_path)
    (directory / SET_STATUS.file).unlink()
    with pytest.raises(ValueError, match=r"without a file: \['set_status-6.lua'\]"):
        load_scripts(directory)


def test_a_keys_count_other_than_the_file_name_is_refused(tmp_path: Path) -> None:
    directory = copy_lua(tmp_path)
    (directory / SET_STATUS.file).rename(directory / "set_status-5.lua")
    with pytest.raises(ValueError, match=r"set_status-5\.lua takes 5 KEYS but .* declares 6"):
        load_scripts(directory)
    one_more = replace(SET_STATUS, keys=(*SET_STATUS.keys, Key("extra", "one key too many")))
    table = tuple(one_more if spec is SET_STATUS else spec for spec in TABLE)
    with pytest.raises(ValueError, match="declares 7"):
        load_scripts(copy_lua(tmp_path / "again"), table=table)


async def test_a_call_with_the_wrong_keys_count_is_refused_before_redis(store: Store) -> None:
    assert await store.client.dbsize() == 0
    with pytest.raises(ScriptKeysError, match="set_status takes 6 KEYS, got 5"):
        await store.script(SET_STATUS, ["k"] * 5, ["pause", 1, "me", "i", "e", "publish", 10])
    assert await store.client.dbsize() == 0


async def test_a_call_with_the_wrong_argv_count_is_refused_before_redis(store: Store) -> None:
    six = ["pause", 1, "me", "i", "e", "publish"]
    status_keys = ["k"] * SET_STATUS.nkeys
    with pytest.raises(ScriptArgsError, match="set_status takes 7 ARGV, got 6"):
        await store.script(SET_STATUS, status_keys, six)
    with pytest.raises(ScriptArgsError, match="set_status takes 7 ARGV, got 8"):
        await store.script(SET_STATUS, status_keys, [*six, 10, "extra"])
    wins_keys = ["w", "i"]
    with pytest.raises(ScriptArgsError, match="read_wins takes 1 or more ARGV, got 0"):
        await store.script(READ_WINS, wins_keys, [])
    assert await store.client.dbsize() == 0
    assert await store.script(READ_WINS, wins_keys, [5, "i", "p:x"]) == [[], []]  # a tail


def test_a_store_module_calls_scripts_by_their_table_entry_not_by_name() -> None:
    """No `self.script("name", ...)` left in the store: a misspelt name would fail only when
    called; a misspelt constant fails at import."""
    by_string = re.compile(r"self\.script\(\s*[\"']")
    used = set()
    for path in sorted((ROOT / "app" / "store").glob("*.py")):
        if path.name == "script_page.py":  # its text shows a call
            continue
        assert not by_string.search(path.read_text()), path.name
        used |= set(re.findall(r"self\.script\(\s*([A-Z_]+)\b", path.read_text()))
    assert used == {spec.name.upper() for spec in TABLE}  # every script has a caller


def test_the_reference_page_renders_every_script_and_is_built_with_the_site() -> None:
    """The site's hook renders the page from the table (so it is never stale); `python -m`
    prints the same page."""
    printed = subprocess.run(
        [sys.executable, "-m", "app.store.script_page"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert printed == render_markdown()
    for spec in TABLE:
        assert f"### {spec.name}\n" in printed and f"`lua/{spec.file}`" in printed
    hook = (ROOT / "docs" / "hooks" / "generated_pages.py").read_text()
    assert "render_markdown()" in hook and '"scripts.md"' in hook
    assert "docs/hooks/generated_pages.py" in (ROOT / "mkdocs.yml").read_text()
    assert not (ROOT / "docs" / "scripts.md").exists()  # made by the build, not committed


def test_the_reference_page_is_in_the_site_navigation() -> None:
    assert re.search(r"^\s+- [^:\n]+: scripts\.md$", (ROOT / "mkdocs.yml").read_text(), re.M)


def test_a_malformed_table_is_refused() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        check_table((SET_STATUS, replace(READ_WINS, name="set_status")))
    with pytest.raises(ValueError, match="two KEYS share a name"):
        check_table((replace(SET_STATUS, keys=(*SET_STATUS.keys, SET_STATUS.keys[0])),))
    with pytest.raises(ValueError, match="two ARGV share a name"):
        check_table((replace(SET_STATUS, argv=(*SET_STATUS.argv, SET_STATUS.argv[0])),))
    with pytest.raises(ValueError, match="listed twice"):
        check_table((replace(SET_STATUS, refusals=(Code.BAD_ARGUMENT, Code.BAD_ARGUMENT)),))
    check_table(TABLE)
