"""mkdocs hook: pages made from the code when the site is built, never written by hand nor
committed (so they cannot go stale): scripts.md from the Lua script table."""

from __future__ import annotations

from typing import Any

from mkdocs.structure.files import File, Files


def on_files(files: Files, config: Any) -> Files:
    from app.store.script_page import render_markdown

    files.append(File.generated(config, "scripts.md", content=render_markdown()))
    return files
