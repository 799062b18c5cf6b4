"""Callbacks: where results may be POSTed, and how they are signed."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import socket
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


async def check_callback_url(url: str, allowlist: tuple[str, ...]) -> None:
    """http(s) only, and no private, loopback or link-local target unless allow-listed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _refused(url, "it must be an http(s) URL with a host")
    host = parts.hostname
    if host in allowlist:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, parts.port or 443)
    except (socket.gaierror, UnicodeError):
        raise _refused(url, "its host does not resolve") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise _refused(url, f"{host} resolves to the non-public address {address}")
