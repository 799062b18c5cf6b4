"""Callbacks: where results may be POSTed, and how they are signed."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.client
import ipaddress
import socket
import ssl
from typing import Any
from urllib.parse import urlsplit

from rq import Retry

from app.refusals import Code, Refused

SIGNATURE_HEADER = "X-Jackpot-Signature"
DELIVERY_HEADER = "X-Jackpot-Delivery"
CALLBACK_RETRY = Retry(max=6, interval=[5, 30, 120, 600, 1800, 3600])


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


def _allowed_addresses(
    url: str, host: str, infos: list[Any], allowlist: tuple[str, ...]
) -> list[str]:
    addresses = [str(info[4][0]) for info in infos]
    if host not in allowlist:
        for address in addresses:
            if not ipaddress.ip_address(address.split("%")[0]).is_global:
                raise _refused(url, f"{host} resolves to the non-public address {address}")
    return addresses


async def check_callback_url(url: str, allowlist: tuple[str, ...]) -> None:
    """http(s) only, and no private, loopback or link-local target unless allow-listed.
    Checked again at delivery, against the address actually connected to."""
    _, host, port = _target(url)
    if host in allowlist:
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
