"""Renders the reference page of the Lua scripts from the script table (app.store.script_table).
The documentation site builds it (docs/hooks/generated_pages.py), so it is never stale; to
read it without the site: `python -m app.store.script_page`."""

from __future__ import annotations

from app.store.script_table import TABLE, ScriptSpec


def _cell(text: str) -> str:
    """`text` in a Markdown table cell: `|` escaped, `<` an entity (not an HTML tag)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace("|", "\\|")


def render_markdown(table: tuple[ScriptSpec, ...] = TABLE) -> str:
    """The reference page docs/scripts.md."""
    lines = [PAGE_INTRO.strip(), ""]
    lines += ["| Script | File | KEYS | ARGV | Refusals |", "| --- | --- | --- | --- | --- |"]
    for spec in sorted(table, key=lambda s: s.name):
        argv = f"{len(spec.argv)}" + (" + more" if spec.rest else "")
        lines.append(
            f"| [{spec.name}](#{spec.name}) | `{spec.file}` | {spec.nkeys} | {argv} "
            f"| {len(spec.refusals)} |"
        )
    for spec in sorted(table, key=lambda s: s.name):
        lines += ["", f"### {spec.name}", "", _cell(spec.summary), "", f"File: `lua/{spec.file}`"]
        lines += ["", "| KEYS | Name | Meaning |", "| --- | --- | --- |"]
        lines += [
            f"| {i} | `{key.name}` | {_cell(key.meaning)} |" for i, key in enumerate(spec.keys, 1)
        ]
        if spec.argv or spec.rest:
            lines += ["", "| ARGV | Name | Meaning and unit |", "| --- | --- | --- |"]
            lines += [
                f"| {i} | `{arg.name}` | {_cell(arg.meaning)} |"
                for i, arg in enumerate(spec.argv, 1)
            ]
            if spec.rest is not None:
                lines.append(
                    f"| {len(spec.argv) + 1}.. | `{spec.rest.name}` | {_cell(spec.rest.meaning)} |"
                )
        else:
            lines += ["", "ARGV: none."]
        refusals = ", ".join(
            f"`{code.value}` ({code.status})" for code in sorted(spec.refusals, key=str)
        )
        lines += ["", f"Refusals: {refusals or 'none'}."]
    return "\n".join(lines) + "\n"


PAGE_INTRO = """
# Lua scripts

<!-- Generated from app/store/script_table.py when the site is built: there is no file to
edit. -->

Every change to Redis that must be atomic is a Lua script in `lua/`, one file per script named
`<verb_noun>-<N>.lua`, N being the number of KEYS it takes. This page lists each script's
KEYS, ARGV and the refusal codes it can answer (`redis.error_reply('CODE detail')`, the
store's `ScriptRefusal`, answered over HTTP with the status in brackets, from
`app/core/refusals.py`). Every key a script touches is in its KEYS, and the keys of one instance
share the hash tag `{jp:<instance id>}`, so a script runs on one Redis Cluster node.

## Where scripts are declared

The single source of truth is the Python table `app/store/script_table.py`: one `ScriptSpec`
per script (name, summary, KEYS, ARGV, refusals). It was chosen over parsing the scripts'
header comments because the headers, although they all describe `KEYS[i]` and `ARGV[i]`,
are prose: variable-length ARGV are written five different ways (`ARGV[2..]`,
`ARGV[23 + 3i]`, `ARGV[20 + 3(k-1) .. 22 + 3(k-1)]`, ...), error lists are in three layouts,
and KEYS have no short names. A table is typed (mypy checks every call site), is importable,
and fails at import when malformed; the headers stay the long form, cross-checked by a test.

What enforces it:

- at start-up, `load_scripts` (called by `ScriptRunner()`) refuses a script file without an
  entry, an entry without a file, and a KEYS count that is not the file name's N;
- a misspelt script at a call site fails at import: the store imports the constant
  (`from app.store.script_table import SET_STATUS`);
- a call with the wrong number of KEYS (`ScriptKeysError`) or of ARGV (`ScriptArgsError`:
  exactly the table's ARGV, or at least them for a script with a variable tail) is refused
  by the store before anything is sent to Redis;
- `tests/test_script_table.py` checks each entry against its file's header (as many
  `KEYS[i]` and `ARGV[i]` as the table has, a variable ARGV tail in both or neither), that
  the refusals are exactly the codes of the script's `redis.error_reply('CODE ...')` (its
  includes expanded), each a member of `app.core.refusals.Code`; this page is rendered from the
  table when the site is built.

## Adding a script

1. Write `lua/<verb_noun>-<N>.lua` with its header comment (`KEYS[i]`, `ARGV[i]` with units,
   `Returns:`, `Errors:`), checks first, writes last.
2. Add a `ScriptSpec` constant named after it to `app/store/script_table.py`.
3. Call it from a store module: `await self.script(VERB_NOUN, [keys...], [args...])`, with
   keys built by `app/store/keys.py`.
4. Cover each refusal in `tests/test_script_refusals.py`.

Measured on a throwaway branch: a new admin endpoint backed by a new read-only script
(`GET /admin/instances/<id>/boosts/count`, one `HLEN`) touches 6 files: the script, its
table entry, the store method, the service method, the route and its test (5 before the
table). The table entry is what makes a forgotten declaration fail at start-up.

## The scripts
"""


if __name__ == "__main__":
    print(render_markdown(), end="")
