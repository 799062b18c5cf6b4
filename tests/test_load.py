"""`jackpot-gateway load FILE`: idempotent, all-or-nothing, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from app.cli import main
from app.core.security import verify_password
from tests.conftest import DEMO_FILE, DEMO_PASSWORDS, DRAW_KEY, SECRET
from tests.support.redis_server import free_port

FIRST_LOAD = [
    "operators: 3 changed",
    "currencies: 1 changed",
    "accounts: 3 created",
    "instances: 2 created",
    "sources: 2 changed",
]
SECOND_LOAD = [
    "operators: 3 unchanged",
    "currencies: 1 unchanged",
    "accounts: 3 unchanged",
    "instances: 2 unchanged",
    "sources: 2 unchanged",
]


@pytest.fixture
def env(real_redis_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The CLI's environment: the private real Redis, a secret, the demo passwords."""
    for name in ("REDIS_CLUSTER", "QUEUE_REDIS_URL", "DEV_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REDIS_URL", real_redis_url)
    monkeypatch.setenv("JWT_SECRET", SECRET)
    monkeypatch.setenv("DRAW_KEY", DRAW_KEY)
    for name, value in DEMO_PASSWORDS.items():
        monkeypatch.setenv(name, value)
    return real_redis_url


Dump = dict[bytes, tuple[bytes, Any, int]]


def read_value(client: redis.Redis, key: bytes, kind: bytes) -> Any:
    """A key's whole value, read by type (DUMP bytes are not stable for hash tables)."""
    if kind == b"string":
        return client.get(key)
    if kind == b"hash":
        return client.hgetall(key)
    if kind == b"zset":
        return client.zrange(key, 0, -1, withscores=True)
    if kind == b"stream":
        return client.xrange(key)
    if kind == b"list":
        return client.lrange(key, 0, -1)
    if kind == b"set":
        return sorted(client.smembers(key))
    raise AssertionError(f"unexpected type {kind!r} of {key!r}")


def dump(url: str) -> Dump:
    """Every key's type, value and expiry, login throttles excluded."""
    client = redis.Redis.from_url(url)
    try:
        found = {}
        for key in client.scan_iter(count=1000):
            if b":login-attempts:" in key:
                continue
            kind = client.type(key)
            found[key] = (kind, read_value(client, key, kind), client.pttl(key))
        return found
    finally:
        client.close()


_LOADED: dict[bytes, tuple[bytes, int]] = {}  # key -> (DUMP, pttl) after loading the demo


def preload(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The store after `load examples/demo.yaml`: loaded once, then restored (argon2 is slow)."""
    client = redis.Redis.from_url(url)
    try:
        if not _LOADED:
            assert load(DEMO_FILE, capsys) == (0, FIRST_LOAD, "")
            for key in client.scan_iter(count=1000):
                _LOADED[key] = (client.dump(key), client.pttl(key))
        else:
            for key, (value, pttl) in _LOADED.items():
                client.restore(key, max(pttl, 0), value, replace=True)
    finally:
        client.close()


def load(path: Path | str, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    code = main(["load", str(path)])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def write(tmp_path: Path, data: dict[str, Any], name: str = "defs.yaml") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data) if name.endswith(".json") else yaml.safe_dump(data))
    return path


def demo_data() -> dict[str, Any]:
    return dict(yaml.safe_load(DEMO_FILE.read_text()))


def assert_one_line_error(code: int, out: list[str], err: str, starts: str) -> None:
    assert code == 1
    assert out == []
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith(f"error: {starts}"), err
    assert "Traceback" not in err


# -- idempotency -----------------------------------------------------------------------
def test_loading_twice_changes_nothing(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert dump(env) == {}
    assert load(DEMO_FILE, capsys) == (0, FIRST_LOAD, "")
    first = dump(env)
    assert b"jg:operators" in first and b"{jp:daily-drop}:ledger" in first
    assert load(DEMO_FILE, capsys) == (0, SECOND_LOAD, "")
    assert dump(env) == first


def test_numbers_and_strings_load_to_the_same_definitions(
    env: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    preload(env, capsys)
    before = dump(env)
    data = demo_data()
    daily = data["instances"][0]
    daily["contribution_type"] = {"Fixed": 0.1}  # YAML/JSON numbers instead of "0.10"
    daily["house_share"] = 0.3
    daily["pots"][0]["seed"] = 10
    data["currencies"]["multipliers"]["USD"] = "1.080"
    assert load(write(tmp_path, data, "defs.json"), capsys) == (0, SECOND_LOAD, "")
    assert dump(env) == before


def test_a_changed_password_rehashes_only_that_account(
    env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    preload(env, capsys)
    monkeypatch.setenv("DEMO_SERVICE_PASSWORD", "a-brand-new-password")
    code, out, _ = load(DEMO_FILE, capsys)
    assert code == 0
    assert "accounts: 1 changed, 2 unchanged" in out
    client = redis.Redis.from_url(env, decode_responses=True)
    try:
        accounts = {name: json.loads(raw) for name, raw in client.hgetall("jg:accounts").items()}
    finally:
        client.close()
    assert verify_password(accounts["demo-service"]["password_hash"], "a-brand-new-password")
    assert not verify_password(accounts["demo-service"]["password_hash"], "demo-password-123")


# -- all or nothing ----------------------------------------------------------------------
def additions(data: dict[str, Any]) -> dict[str, Any]:
    """Valid new things that must not be written when something else in the file is bad."""
    data["operators"].append({"id": "third", "brands": ["b1"]})
    data["accounts"].append(
        {
            "username": "third-service",
            "password_env": "DEMO_SERVICE_PASSWORD",
            "operator_id": "third",
        }
    )
    data["currencies"]["multipliers"]["CHF"] = "0.95"
    extra = {**data["instances"][0], "id": "extra-drop", "allowed_brands": ["third:b1"]}
    data["instances"].append(extra)
    data["sources"].append(
        {"source_id": "new", "owner_id": "third:b1", "source_name": "New", "instance_ids": []}
    )
    return data


def broken_share(data: dict[str, Any]) -> None:
    data["instances"][1]["house_share"] = "0.5000001"


def broken_sum(data: dict[str, Any]) -> None:
    data["instances"][0]["house_share"] = "0.31"


def unknown_source_instance(data: dict[str, Any]) -> None:
    data["sources"][0]["instance_ids"].append("no-such-instance")


def unknown_account_operator(data: dict[str, Any]) -> None:
    data["accounts"][0]["operator_id"] = "ghost"


def unknown_brand(data: dict[str, Any]) -> None:
    data["instances"][-1]["allowed_brands"] = ["demo:brand9"]


def unset_password(data: dict[str, Any]) -> None:
    data["accounts"][0]["password_env"] = "JG_TEST_UNSET_PASSWORD"


def duplicate_instance(data: dict[str, Any]) -> None:
    data["instances"].append(dict(data["instances"][0]))


def unknown_field(data: dict[str, Any]) -> None:
    data["instances"][0]["pots"][0]["colour"] = "gold"


BROKEN = [
    (broken_share, "{file} is invalid: "),
    (broken_sum, "{file} is invalid: "),
    (unknown_field, "{file} is invalid: "),
    (unknown_source_instance, "Instance no-such-instance does not exist."),
    (unknown_account_operator, "Operator ghost does not exist."),
    (unknown_brand, "Brand demo:brand9 does not exist."),
    (unset_password, "Environment variable JG_TEST_UNSET_PASSWORD is not set."),
    (duplicate_instance, "Instance ids must be unique."),
]


@pytest.mark.parametrize(("breaks", "message"), BROKEN, ids=[b.__name__ for b, _ in BROKEN])
@pytest.mark.parametrize("preloaded", [False, True], ids=["empty", "preloaded"])
def test_a_file_with_an_error_writes_nothing(
    env: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    breaks: Any,
    message: str,
    preloaded: bool,
) -> None:
    if preloaded:
        preload(env, capsys)
    before = dump(env)
    data = additions(demo_data())
    breaks(data)
    path = write(tmp_path, data)
    code, out, err = load(path, capsys)
    assert_one_line_error(code, out, err, message.format(file=path))
    assert dump(env) == before


def test_a_changed_instance_is_refused_and_nothing_is_written(
    env: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    preload(env, capsys)
    before = dump(env)
    data = additions(demo_data())
    data["instances"][1]["name"] = "Weekly Raffle, renamed"
    code, out, err = load(write(tmp_path, data), capsys)
    assert_one_line_error(code, out, err, "Instance weekly-raffle exists with another definition.")
    assert dump(env) == before


@pytest.mark.parametrize(
    ("text", "name", "starts"),
    [
        ("operators:\n  - id: x\n   brands: [a]\n", "defs.yaml", "{file} is not valid YAML: "),
        ("[1, 2]\n", "defs.yaml", "{file} must hold a mapping of definitions"),
        ('{"operators": [}', "defs.json", "Expecting value"),
        ("operators: 5\n", "defs.yaml", "{file} is invalid: "),
    ],
    ids=["yaml-syntax", "not-a-mapping", "json-syntax", "wrong-shape"],
)
def test_unreadable_files(
    env: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    text: str,
    name: str,
    starts: str,
) -> None:
    path = tmp_path / name
    path.write_text(text)
    code, out, err = load(path, capsys)
    assert_one_line_error(code, out, err, starts.format(file=path))
    assert dump(env) == {}


def test_a_missing_file(env: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = load(tmp_path / "nope.yaml", capsys)
    assert_one_line_error(code, out, err, "[Errno 2] No such file or directory")


def test_an_unreachable_redis_is_a_one_line_error(
    env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    code, out, err = load(DEMO_FILE, capsys)
    assert_one_line_error(code, out, err, "Redis failed: ")


# -- create-account --------------------------------------------------------------------
def create_account(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["create-account", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_create_account(
    env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    preload(env, capsys)
    monkeypatch.setenv("NEW_PASSWORD", "a-long-enough-password")
    args = ["--username", "ops", "--operator", "demo", "--role", "admin", "--role", "operator"]
    assert create_account(capsys, *args, "--password-env", "NEW_PASSWORD") == (
        0,
        "created ops for demo (admin, operator)\n",
        "",
    )
    client = redis.Redis.from_url(env, decode_responses=True)
    try:
        stored = json.loads(client.hget("jg:accounts", "ops") or "{}")
    finally:
        client.close()
    assert stored["operator_id"] == "demo"
    assert stored["roles"] == ["admin", "operator"]
    assert verify_password(stored["password_hash"], "a-long-enough-password")

    before = dump(env)
    code, out, err = create_account(capsys, *args, "--password-env", "NEW_PASSWORD")
    assert (code, out, err) == (1, "", "error: Account ops already exists.\n")
    assert dump(env) == before


def test_create_account_with_the_platform_role(
    env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    preload(env, capsys)
    monkeypatch.setenv("NEW_PASSWORD", "a-long-enough-password")
    args = ["--username", "staff", "--operator", "provider", "--role", "platform"]
    assert create_account(capsys, *args, "--password-env", "NEW_PASSWORD") == (
        0,
        "created staff for provider (platform)\n",
        "",
    )


@pytest.mark.parametrize(
    ("args", "variable", "message"),
    [
        (["--operator", "ghost"], "a-long-enough-password", "Operator ghost does not exist."),
        (["--operator", "demo"], "", "environment variable NEW_PASSWORD is not set"),
        (["--operator", "demo"], "short", "the password must have at least 12 characters"),
    ],
    ids=["unknown-operator", "unset-password", "short-password"],
)
def test_create_account_refusals(
    env: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    variable: str,
    message: str,
) -> None:
    preload(env, capsys)
    monkeypatch.setenv("NEW_PASSWORD", variable)
    before = dump(env)
    code, out, err = create_account(
        capsys, "--username", "ops", *args, "--password-env", "NEW_PASSWORD"
    )
    assert (code, out, err) == (1, "", f"error: {message}\n")
    assert dump(env) == before
