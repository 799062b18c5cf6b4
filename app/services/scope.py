"""Which operator and brand a request speaks for, checked against the caller's token, and
which admin objects a caller reaches.

Admin scoping (DESIGN.md section 9), the one rule for every admin route: the platform role
reaches every operator's objects; an operator's admin reaches its own operator's. Another
operator's object named in a path is unknown (404, as a missing one); another operator named
in a body (an account's operator, a brand) is 403 OPERATOR_FORBIDDEN, as in the operator API;
another operator's instance named in a body is an unknown reference (422). An instance is an
operator's own when all its allowed brands are that operator's; an instance shared by several
operators is shown to each of them (its view, reconciliation and meters) but only the platform
changes it or reads its per-player records (403 PLATFORM_REQUIRED).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from app.core.refusals import Code, Refused
from app.core.security import Principal
from app.services.audit import brand_operators
from app.services.config import ConfigCache, ConfigSnapshot


@dataclass(frozen=True)
class BrandRef:
    operator_id: str
    brand_id: str

    @property
    def path(self) -> str:
        return f"{self.operator_id}:{self.brand_id}"


def check_operator(principal: Principal, operator_id: str) -> None:
    if operator_id != principal.operator_id:
        raise Refused(
            Code.OPERATOR_FORBIDDEN, f"This token may not act for operator {operator_id!r}."
        )


def resolve_brand(principal: Principal, brand: str, config: ConfigSnapshot) -> BrandRef:
    """`operator_id:brand_id`, or a bare brand id of the caller's own operator."""
    operator_id, sep, brand_id = brand.partition(":")
    if not sep:
        operator_id, brand_id = principal.operator_id, brand
    check_operator(principal, operator_id)
    operator = config.operators.get(operator_id)
    if operator is None or brand_id not in operator["brands"]:
        raise Refused(Code.BRAND_NOT_FOUND, f"Brand {operator_id}:{brand_id} does not exist.")
    return BrandRef(operator_id, brand_id)


def qualified_brand(operator_id: str, brand_id: str) -> str:
    """v2's `player.brand_id`: a plain brand of `operator_id`, or already `operator:brand`."""
    return brand_id if ":" in brand_id else f"{operator_id}:{brand_id}"


def records_operator(principal: Principal, operator_id: str | None) -> str:
    """The operator whose records (failed callbacks, withheld wins, audit trail) a request
    reaches: the caller's by default; another one named only with the platform role."""
    if operator_id is None:
        return principal.operator_id
    if not principal.is_platform:
        check_operator(principal, operator_id)
    return operator_id


def check_brands(principal: Principal, brands: Iterable[str]) -> None:
    """Brands (`operator:brand`) named in an admin body: the caller's operator's only."""
    if principal.is_platform:
        return
    for operator_id in sorted(brand_operators(brands)):
        check_operator(principal, operator_id)


def admin_instance(
    principal: Principal, definition: dict[str, Any] | None, instance_id: str, *, own: bool
) -> dict[str, Any]:
    """The definition of an instance the caller reaches (see the module docstring): unknown
    unless one of its brands is the caller's operator's. `own`: the route changes it or
    shows its per-player records, so an instance shared with other operators is refused
    unless the caller has the platform role."""
    if definition is None:
        raise Refused(Code.INSTANCE_NOT_FOUND, f"Instance {instance_id} does not exist.")
    if principal.is_platform:
        return definition
    operators = brand_operators(definition["allowed_brands"])
    if principal.operator_id not in operators:
        raise Refused(Code.INSTANCE_NOT_FOUND, f"Instance {instance_id} does not exist.")
    if own and operators != {principal.operator_id}:
        raise Refused(
            Code.PLATFORM_REQUIRED,
            f"Instance {instance_id} is shared by several operators: the platform manages it.",
        )
    return definition


async def managed_instance(
    config: ConfigCache, principal: Principal, instance_id: str, *, own: bool
) -> dict[str, Any]:
    """`admin_instance` on the cached configuration, read again when the cache does not
    have the instance yet (another process may have just created it)."""
    snapshot = await config.get()
    if instance_id not in snapshot.instances:
        config.invalidate()
        snapshot = await config.get()
    return admin_instance(principal, snapshot.instances.get(instance_id), instance_id, own=own)
