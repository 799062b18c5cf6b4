"""Which operator and brand a request speaks for, checked against the caller's token."""

from __future__ import annotations

from dataclasses import dataclass

from app.refusals import Code, Refused
from app.security import Principal
from app.services.config import ConfigSnapshot


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
