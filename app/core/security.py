"""Service tokens (JWT HS256 via joserfc) and password hashing (argon2id)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwk import OctKey
from joserfc.jwt import JWTClaimsRegistry

ALGORITHM = "HS256"
# operator: the operator API (contribute, opt in, read). admin: the operator's own admin
# objects. platform: the jackpot provider's staff, every operator's objects
# (app.edge.contract.Scope).
ROLES = ("operator", "admin", "platform")
PLATFORM = "platform"
# A display token's only role (minted by POST /authenticate/display, never an account's):
# read-only, limited to its brands, accepted by GET /events alone (app.services.auth).
DISPLAY = "display"
VERIFIED_CACHE_SIZE = 10_000

_hasher = PasswordHasher()  # argon2id with the library's current defaults


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# A valid hash to verify against when the username is unknown, so timing does not tell.
DUMMY_HASH = hash_password("not-a-real-password")


class TokenError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Principal:
    """Who is calling: the service account behind a valid token."""

    username: str
    operator_id: str
    roles: tuple[str, ...]
    # When the token was issued (epoch ms): a revocation of the account at or after this
    # moment invalidates the token. Not part of the caller's identity, hence compare=False.
    issued_ms: int = field(default=0, compare=False)
    # A display token's brands (`operator:brand`, the operator's own); empty for services.
    brands: tuple[str, ...] = ()

    @property
    def is_display(self) -> bool:
        return DISPLAY in self.roles

    @property
    def viewer(self) -> str:
        """Who the event stream masks for (app.schemas.events MASKS) and the key of what it
        shows: the operator for a service; for a display, a key with `|`, which no operator id
        contains (app.schemas.common.ID_PATTERN): nobody's players are its own."""
        return f"{DISPLAY}|{','.join(self.brands)}" if self.is_display else self.operator_id

    def shows_brand(self, brand: str) -> bool:
        """Whether an instance allowing `brand` (`operator:brand`) is shown to this caller on
        the event stream: its operator's brands, or a display's own brands only."""
        if self.is_display:
            return brand in self.brands
        return brand.startswith(self.operator_id + ":")

    @property
    def is_admin(self) -> bool:
        """May use the admin API: its own operator's objects, or every one's (platform)."""
        return "admin" in self.roles or self.is_platform

    @property
    def is_platform(self) -> bool:
        return PLATFORM in self.roles

    def sees(self, operator_id: str) -> bool:
        """Whether the objects of `operator_id` exist for this caller in the admin API."""
        return self.is_platform or operator_id == self.operator_id


class TokenIssuer:
    def __init__(self, secret: str, issuer: str, ttl_s: int) -> None:
        self._key = OctKey.import_key(secret)
        self._issuer = issuer
        self.ttl_s = ttl_s
        self._registry = JWTClaimsRegistry(
            leeway=5,
            iss={"essential": True, "value": issuer},
            sub={"essential": True},
            exp={"essential": True},
            op={"essential": True},
        )
        self._verified: dict[str, tuple[Principal, int]] = {}

    def issue(
        self, principal: Principal, *, now: float | None = None, ttl_s: int | None = None
    ) -> str:
        now = time.time() if now is None else now
        issued = int(now)
        claims: dict[str, object] = {
            "iss": self._issuer,
            "sub": principal.username,
            "op": principal.operator_id,
            "roles": list(principal.roles),
            "iat": issued,
            "iat_ms": int(now * 1000),  # `iat` has whole seconds; revocation needs finer
            "exp": issued + (self.ttl_s if ttl_s is None else ttl_s),
        }
        if principal.is_display:
            claims["brands"] = list(principal.brands)
        return jwt.encode({"alg": ALGORITHM}, claims, self._key, algorithms=[ALGORITHM])

    def verify(self, token: str) -> Principal:
        """The caller behind a valid token. A verified token is remembered until its `exp`
        (bounded cache keyed by the whole token), so repeat calls skip the HMAC and claims."""
        return self.verify_until(token)[0]

    def verify_until(self, token: str) -> tuple[Principal, int]:
        """The caller and the token's expiry (epoch seconds): a websocket closes then."""
        cached = self._verified.get(token)
        if cached is not None and time.time() < cached[1]:
            return cached
        principal, expires = self._verify(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.pop(next(iter(self._verified)))  # the oldest entry
        self._verified[token] = (principal, expires)
        return principal, expires

    def _verify(self, token: str) -> tuple[Principal, int]:
        try:
            decoded = jwt.decode(token, self._key, algorithms=[ALGORITHM])
            self._registry.validate(decoded.claims)
        except ExpiredTokenError:
            raise TokenError("TOKEN_EXPIRED", "the token has expired") from None
        except (JoseError, ValueError, TypeError):
            raise TokenError("INVALID_TOKEN", "the token is not valid") from None
        claims = decoded.claims
        roles = claims.get("roles") or []
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise TokenError("INVALID_TOKEN", "the token is not valid")
        brands = claims.get("brands")
        if DISPLAY in roles:  # a display token has that role alone, and brands
            if roles != [DISPLAY] or not _strings(brands) or not brands:
                raise TokenError("INVALID_TOKEN", "the token is not valid")
        elif brands is not None:
            raise TokenError("INVALID_TOKEN", "the token is not valid")
        issued_ms = claims.get("iat_ms")
        if not isinstance(issued_ms, int):  # a token without it: revoked by any revocation
            iat = claims.get("iat")
            issued_ms = int(iat * 1000) if isinstance(iat, int | float) else 0
        principal = Principal(
            str(claims["sub"]), str(claims["op"]), tuple(roles), issued_ms, tuple(brands or ())
        )
        return principal, int(claims["exp"])


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)
