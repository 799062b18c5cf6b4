"""What a callback may ask for: header names the gateway sets itself are reserved, the target
must be a unicast address, and the header-name rule is published in /openapi.json."""

from __future__ import annotations

import json
import re
import socket
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from quart.testing import QuartClient

from app import create_app
from app.core import jsonio
from app.core.config import Settings
from app.core.refusals import Code, Refused
from app.edge.openapi import build_spec
from app.services import Services
from app.services.callbacks import deliver
from tests.conftest import DEMO, auth, load_demo, make_settings
from tests.support.definitions import instance
from tests.support.http import create_instance, error_of, post, v1_body, v2_body
from workers.main import queues

CONTRIBUTE = "/jackpots/contribute"
PUBLIC_HOOK = "https://8.8.8.8/hook"  # public: the job is only queued here, never run
NON_UNICAST = (
    "224.0.0.1",  # multicast (all hosts)
    "239.255.255.250",  # multicast (SSDP)
    "255.255.255.255",  # limited broadcast
    "0.0.0.0",  # unspecified
    "240.0.0.1",  # reserved (class E)
)
RESERVED = (
    "X-Jackpot-Signature",
    "x-jackpot-signature",
    "X-JACKPOT-DELIVERY",
    "X-Jackpot-Timestamp",
    "Content-Type",
    "content-length",
    "Host",
    "Transfer-Encoding",
    "Connection",
)


@pytest.fixture
def settings(redis_url: str) -> Settings:
    """The non-unicast hosts are allow-listed: the allow-list admits private addresses, never
    an address no HTTP server can answer from."""
    return make_settings(redis_url, callback_allowlist=NON_UNICAST)


@pytest.fixture
async def headers(gateway: Services) -> dict[str, str]:
    await load_demo(gateway)
    return auth(gateway, DEMO)


def queued(gateway: Services) -> int:
    return sum(queue.count for queue in queues(gateway.settings))


@pytest.mark.parametrize("name", RESERVED)
async def test_a_header_the_gateway_sets_is_refused_in_the_callback(
    client: QuartClient, gateway: Services, headers: dict[str, str], name: str
) -> None:
    await create_instance(client, headers, instance("cb"))
    hook = {"url": PUBLIC_HOOK, "headers": {"X-Ok": "1", name: "sha256=forged"}}
    for path, body in (
        (CONTRIBUTE, v1_body("cb", callback=hook)),
        ("/v2/jackpots/contribute", v2_body("cb", options={"callback": hook})),
    ):
        status, code, details = await error_of(await post(client, path, body, headers))
        assert (status, code) == (400, "CALLBACK_HEADER_RESERVED"), path
        field = "callback.headers" if path == CONTRIBUTE else "options.callback.headers"
        assert details == {field: [name]}
    assert queued(gateway) == 0
    # The same request without the reserved name is queued.
    hook["headers"] = {"X-Ok": "1"}
    response = await post(client, CONTRIBUTE, v1_body("cb", callback=hook), headers)
    assert response.status_code == 200
    assert queued(gateway) == 1


@pytest.mark.parametrize("address", NON_UNICAST)
async def test_a_non_unicast_callback_host_is_refused_even_when_allow_listed(
    client: QuartClient, gateway: Services, headers: dict[str, str], address: str
) -> None:
    await create_instance(client, headers, instance("cb"))
    body = v1_body("cb", callback={"url": f"http://{address}:8080/hook"})
    status, code, details = await error_of(await post(client, CONTRIBUTE, body, headers))
    assert (status, code, list(details)) == (422, "CALLBACK_NOT_ALLOWED", ["url"])
    assert queued(gateway) == 0


async def test_a_name_that_resolves_to_a_multicast_address_is_refused(
    client: QuartClient,
    gateway: Services,
    headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = socket.getaddrinfo

    def lookup(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.example.com":
            return real("224.0.0.251", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    await create_instance(client, headers, instance("cb"))
    body = v1_body("cb", callback={"url": "http://hooks.example.com/hook"})
    assert (await error_of(await post(client, CONTRIBUTE, body, headers)))[:2] == (
        422,
        "CALLBACK_NOT_ALLOWED",
    )
    assert queued(gateway) == 0


@pytest.mark.parametrize("address", NON_UNICAST)
def test_delivery_refuses_a_non_unicast_address_before_connecting(address: str) -> None:
    with pytest.raises(Refused) as refused:
        deliver(f"http://{address}:9/hook", {}, b"{}", NON_UNICAST, timeout=0.5)
    assert refused.value.code is Code.CALLBACK_NOT_ALLOWED


# -- the published rule ----------------------------------------------------------------
DOCUMENT = json.loads(jsonio.dumps(build_spec(create_app(make_settings("memory://spec")), "x")))
CALLBACK_HEADERS = DOCUMENT["components"]["schemas"]["Callback"]["properties"]["headers"]


def published_name_pattern() -> tuple[str, Any]:
    """The one pattern property of the callback headers, and the schema of the values."""
    [(pattern, values)] = CALLBACK_HEADERS["patternProperties"].items()
    return str(pattern), values


def test_the_header_rules_are_in_the_callback_schema() -> None:
    name_pattern, values = published_name_pattern()
    assert CALLBACK_HEADERS["additionalProperties"] is False
    assert CALLBACK_HEADERS["maxProperties"] == 20
    assert CALLBACK_HEADERS["propertyNames"] == {"pattern": name_pattern}
    assert values == {"type": "string", "maxLength": 1024}
    for operation in (
        DOCUMENT["paths"]["/jackpots/contribute"]["post"],
        DOCUMENT["paths"]["/v2/jackpots/contribute"]["post"],
    ):
        assert "callback.headers" not in operation.get("x-rules", {})  # a schema rule now
        assert "CALLBACK_HEADER_RESERVED" in operation["responses"]["400"]["description"]


def any_case(text: str) -> st.SearchStrategy[str]:
    return st.tuples(*(st.sampled_from([c.lower(), c.upper()]) for c in text)).map("".join)


NAMES = st.one_of(
    st.from_regex(r"[A-Za-z0-9\-]{1,70}", fullmatch=True),
    st.sampled_from(RESERVED).flatmap(any_case),
    st.from_regex(r"x-jackpot-[a-z\-]{0,8}", fullmatch=True).flatmap(any_case),
    st.text(max_size=8),
)


@given(NAMES)
def test_the_published_name_pattern_is_the_rule_the_server_applies(name: str) -> None:
    """A name the published pattern admits is accepted by the schema and not reserved; a name
    it refuses is refused by one or the other."""
    from app.schemas.contributions import CallbackSchema
    from app.services.callbacks import reserved_headers

    # As a JSON Schema (ECMA-262) reads it: `$` is the very end (Python's `$` also matches
    # before a final newline).
    published = re.search(published_name_pattern()[0].replace("$", r"\Z"), name) is not None
    errors = CallbackSchema().validate({"url": PUBLIC_HOOK, "headers": {name: "v"}})
    accepted = not errors and not reserved_headers({name: "v"})
    assert published == accepted, (name, errors)
