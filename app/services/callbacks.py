"""Callbacks: where results may be POSTed, and how they are signed."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.client
import ipaddress
import socket
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from rq import Retry

from app.core.refusals import Code, Refused
from app.schemas.contributions import is_reserved_header

SIGNATURE_HEADER = "X-Jackpot-Signature"
DELIVERY_HEADER = "X-Jackpot-Delivery"
CALLBACK_RETRY = Retry(max=6, interval=[5, 30, 120, 600, 1800, 3600])
# How long the headers a caller gave its callback are kept at most: deleted once delivered;
# a delivery that exhausted its retries keeps them this long for the admins' redelivery.
CALLBACK_HEADERS_TTL_S = 7 * 24 * 3600


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _refused(url: str, why: str) -> Refused:
    return Refused(
        Code.CALLBACK_NOT_ALLOWED, f"Callback URL {url} is not allowed: {why}.", {"url": [why]}
    )


def _target(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _refused(url, "it must be an http(s) URL with a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise _refused(url, "its port is not valid") from None
    return parts.scheme, parts.hostname, port


def reserved_headers(headers: Mapping[str, str]) -> list[str]:
    """The names among `headers` that the gateway sets itself on a delivery (its own
    `X-Jackpot-*` headers, and those that frame the request), as the caller spelled them."""
    return [name for name in headers if is_reserved_header(name)]


def check_callback_headers(headers: Mapping[str, str], field: str) -> None:
    """A callback may not set a header the gateway sets: a receiver would trust a forged
    `X-Jackpot-Signature`, and the framing headers would change how the request is sent."""
    names = reserved_headers(headers)
    if names:
        raise Refused(
            Code.CALLBACK_HEADER_RESERVED,
            f"{', '.join(names)}: set by the gateway on every delivery, not by the callback.",
            {field: names},
        )


def _not_unicast(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """No HTTP server answers from a multicast, broadcast, unspecified or reserved address.
    (IPv6's "reserved" ::/8 holds the loopback ::1 and the IPv4-mapped addresses: those are
    unicast, and the private-address rule judges them.)"""
    if address.is_multicast or address.is_unspecified:
        return True
    return isinstance(address, ipaddress.IPv4Address) and (
        address.is_reserved or address == ipaddress.IPv4Address("255.255.255.255")
    )


def _allowed_addresses(
    url: str, host: str, infos: list[Any], allowlist: tuple[str, ...]
) -> list[str]:
    """The addresses, each unicast, and public unless `host` is allow-listed."""
    addresses = [str(info[4][0]) for info in infos]
    for address in addresses:
        parsed = ipaddress.ip_address(address.split("%")[0])
        if _not_unicast(parsed):
            raise _refused(url, f"{host} resolves to the non-unicast address {address}")
        if host not in allowlist and not parsed.is_global:
            raise _refused(url, f"{host} resolves to the non-public address {address}")
    return addresses


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def check_callback_url(url: str, allowlist: tuple[str, ...]) -> None:
    """http(s) only; a unicast target, and no private, loopback or link-local one unless
    allow-listed. Checked again at delivery, against the address actually connected to."""
    _, host, port = _target(url)
    if host in allowlist:
        literal = _literal(host)
        if literal is not None and _not_unicast(literal):
            raise _refused(url, f"{host} is not a unicast address")
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise _refused(url, "its host does not resolve") from None
    _allowed_addresses(url, host, infos, allowlist)


class CallbackFailed(Exception):
    """The receiver did not take the delivery (its answer, or a redirect): retried later."""


def deliver(
    url: str, headers: dict[str, str], body: bytes, allowlist: tuple[str, ...], timeout: float
) -> int:
    """POST `body` to `url`. The host is resolved once, every address is checked, and the
    connection goes to a checked address (a DNS answer that changes between the check and the
    connection cannot send the request elsewhere). Redirects are never followed: the
    signature and headers go to the URL the operator configured, nowhere else."""
    scheme, host, port = _target(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise _refused(url, "its host does not resolve") from None
    address = _allowed_addresses(url, host, infos, allowlist)[0]
    connection_class = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(host, port, address, timeout)
    try:
        connection.connect()
        peer = connection.sock.getpeername()[0]
        _allowed_addresses(url, host, [(None, None, None, None, (peer, port))], allowlist)
        path = urlsplit(url)._replace(scheme="", netloc="").geturl() or "/"
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    if not 200 <= response.status < 300:
        where = response.getheader("Location")
        raise CallbackFailed(
            f"{url} answered {response.status}"
            + (f" (redirect to {where}, not followed)" if where else "")
        )
    return response.status


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to a given address while speaking to `host` (the Host header)."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """As above over TLS; the certificate is checked against `host` (SNI too)."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)  # type: ignore[attr-defined]
