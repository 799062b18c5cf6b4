"""Structure: the processes import only what they use."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module",
    ["app.money", "app.store", "app.cli", "workers.main", "workers.jobs", "schedulers.main"],
)
def test_importing_a_part_does_not_build_the_web_app(module: str) -> None:
    check = (
        f"import sys, {module}; "
        "loaded = [m for m in ('quart', 'hypercorn', 'app.web', 'app.dev') if m in sys.modules]; "
        "print(','.join(loaded))"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "", f"{module} imports {result.stdout.strip()}"


def test_the_dev_server_does_not_import_the_cli() -> None:
    check = "import sys, app.dev; print('app.cli' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"


def test_the_factory_is_still_reachable_from_the_package() -> None:
    from app import create_app
    from app.web import create_app as factory

    assert create_app is factory
