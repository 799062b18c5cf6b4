"""The published contract, kept true: schemathesis fuzzes every operation of /openapi.json
with a valid admin token against the app served on a real socket.

On every answer: no 5xx, the body matches the schema declared for its status, no status or
content type that is not declared, and a request the document allows is not refused as
malformed (400), except under a rule the route declares for what a JSON schema cannot say.
Bounded: a few examples per operation, no shrinking, fixed seeds. The first seed also runs
the document's own examples and schemathesis' coverage phase (the same under every seed);
the others fuzz only, each drawing other requests. `JG_FUZZ_EXAMPLES=200` runs a longer
hunt, `JG_FUZZ_SEEDS=1,2,3,4,5` more seeds.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

from app import create_app
from app.core import jsonio
from app.core.money import BOUNDS_TEXT
from app.core.security import Principal
from app.edge.openapi import build_spec
from app.edge.routes.health import package_version
from tests.conftest import load_demo, make_settings
from tests.support.browser import LiveServer

EXAMPLES = int(os.environ.get("JG_FUZZ_EXAMPLES", "6"))
SEEDS = [int(seed) for seed in os.environ.get("JG_FUZZ_SEEDS", "1,2,3").split(",")]
# Every role, so that every operation, the platform's too, gets past its role check.
FUZZER = Principal("fuzzer", "demo", ("admin", "operator", "platform"))
ANSWERED: dict[str, set[int]] = {}  # operation -> statuses seen, to prove the token worked
ACCEPTED = {401, 403, 404, 409, 422, 429}  # refusals of a well-formed request

# The document the server serves (checked below to be the same one).
DOCUMENT = json.loads(jsonio.dumps(build_spec(create_app(make_settings("memory://spec")), "x")))


def fuzzer(seed: int, first: bool) -> Any:
    """The schemathesis schema of the document, generating with this seed."""
    return schemathesis.openapi.from_dict(
        DOCUMENT,
        config=SchemathesisConfig.from_dict(
            {
                "seed": seed,
                "generation": {
                    "max-examples": EXAMPLES,
                    "no-shrink": True,
                    "deterministic": True,
                    "mode": "all",
                },
                "phases": {"examples": {"enabled": first}, "coverage": {"enabled": first}},
                "suppress-health-check": ["all"],
            }
        ),
    )


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[LiveServer, str]]:
    settings = make_settings(f"memory://fuzz-{uuid.uuid4().hex}")
    app = create_app(settings)
    gateway = None
    with LiveServer(app, settings) as server:
        gateway = app.extensions["gateway"]
        server.call(load_demo(gateway))
        # A real account, so the token stays valid however accounts are checked.
        server.call(
            gateway.admin.create_account(
                "fuzzer", "fuzzer-password-123", "demo", list(FUZZER.roles)
            )
        )
        yield server, gateway.tokens.issue(FUZZER)


async def test_the_fuzzed_document_is_the_served_one(live: tuple[LiveServer, str]) -> None:
    server, _ = live
    async with httpx.AsyncClient() as client:
        served = (await client.get(f"{server.url}/openapi.json")).json()
    assert {**served, "info": None} == {**DOCUMENT, "info": None}
    assert served["info"]["version"] == package_version()


def detail_paths(details: Any, prefix: str = "") -> list[str]:
    """The paths of the refused fields, but a number beyond the bounds the document's
    description publishes for every number (BOUNDS_TEXT: no JSON schema keyword says it)."""
    if details == [BOUNDS_TEXT]:
        return []
    if not isinstance(details, dict) or not details:
        return [prefix]
    paths = []
    for key, value in details.items():
        paths += detail_paths(value, f"{prefix}.{key}" if prefix else str(key))
    return paths


@schemathesis.check
def well_formed_requests_are_accepted(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis' positive_data_acceptance, knowing the routes' declared rules."""
    ANSWERED.setdefault(case.operation.label, set()).add(response.status_code)
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    status = response.status_code
    if status < 400 or status in ACCEPTED or status >= 500:
        return None  # 5xx: not_a_server_error reports it
    rules = case.operation.definition.raw.get("x-rules", {})
    body = response.json() if status == 400 else {}
    if body.get("code") == "VALIDATION_ERROR" and body.get("details"):
        paths = detail_paths(body["details"])
        if all(any(p == r or p.startswith(r + ".") for r in rules) for p in paths):
            return None
    raise AssertionError(f"A request the document allows was refused: {status} {response.text}")


def contract_test(seed: int, first: bool) -> Any:
    @fuzzer(seed, first).parametrize()
    def test(case: Any, live: tuple[LiveServer, str]) -> None:
        server, token = live
        case.call_and_validate(
            base_url=server.url,
            headers={"Authorization": f"Bearer {token}"},
            additional_checks=[well_formed_requests_are_accepted],
            excluded_checks=[positive_data_acceptance],
        )

    return test


# test_the_server_keeps_its_published_contract_seed_<N>: one parametrized test per seed.
for _index, _seed in enumerate(SEEDS):
    globals()[f"test_the_server_keeps_its_published_contract_seed_{_seed}"] = contract_test(
        _seed, first=_index == 0
    )


def test_the_fuzzer_got_past_the_token_check() -> None:
    """A fuzz run that only ever met 401 would prove nothing."""
    assert len(ANSWERED) >= 30
    stuck = [label for label, statuses in ANSWERED.items() if statuses <= {401, 403}]
    assert stuck == []
    succeeded = [label for label, statuses in ANSWERED.items() if any(s < 300 for s in statuses)]
    assert len(succeeded) >= 10, ANSWERED
