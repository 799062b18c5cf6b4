"""The client's address behind trusted proxies (TRUSTED_PROXIES), for every route.

Behind a router or load balancer every connection comes from the proxy's address; the proxy
appends the address it saw to `X-Forwarded-For`. That header is believed only when the socket
peer is a trusted proxy: then the client is the rightmost address of the header that is not
itself a trusted proxy (entries to its left were written by the client and prove nothing).
From any other peer the header is ignored, so a caller cannot choose its own address (the
login throttle is keyed on it).

The middleware wraps the whole ASGI app, so the Quart routes (`request.remote_addr`) and the
contribution routes answered straight from ASGI (app.edge.direct) see the same `scope["client"]`.
Hypercorn's `ProxyFixMiddleware` trusts the last N hops whoever the peer is, and copies the
whole scope on every request; this one checks the peer and only replaces `client`.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

Message = dict[str, Any]
ASGIApp = Callable[[Message, Callable[..., Any], Callable[..., Any]], Awaitable[None]]
MAX_ADDRESS_CHARS = 64  # an entry that is not an IP address is kept, this long at most
FORWARDED_FOR = b"x-forwarded-for"


@functools.lru_cache(maxsize=4096)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack socket's view of an IPv4 peer
    return address


@functools.lru_cache(maxsize=4096)
def _client_text(hop: str) -> str:
    """An X-Forwarded-For entry as the client's address: normalized when it is an IP address
    (str() of an address costs microseconds: cached), else kept, bounded."""
    address = _address(hop)
    return str(address) if address is not None else hop[:MAX_ADDRESS_CHARS]


class TrustedProxies:
    """ASGI middleware: `scope["client"]` becomes the forwarded client when the peer is a
    trusted proxy."""

    def __init__(self, app: ASGIApp, networks: Iterable[str]) -> None:
        self.app = app
        self.networks = tuple(ipaddress.ip_network(network) for network in networks)
        self.trusted = functools.lru_cache(maxsize=4096)(self._trusted)

    def _trusted(self, text: str) -> bool:
        address = _address(text)
        return address is not None and any(address in network for network in self.networks)

    def client(self, scope: Message) -> str | None:
        """The forwarded client's address, or None to keep the peer's."""
        peer = scope.get("client")
        if not peer or not self.trusted(peer[0]):
            return None
        hops: list[str] = []
        for name, value in scope["headers"]:
            if name == FORWARDED_FOR:
                hops.extend(part.strip() for part in value.decode("latin-1").split(","))
        hops = [hop for hop in hops if hop]
        for hop in reversed(hops):
            if not self.trusted(hop):
                return _client_text(hop)
        # Every entry is a trusted proxy: the leftmost is the furthest known hop.
        return _client_text(hops[0]) if hops else None

    async def __call__(self, scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            client = self.client(scope)
            if client is not None:
                scope = {**scope, "client": (client, 0)}
        await self.app(scope, receive, send)
