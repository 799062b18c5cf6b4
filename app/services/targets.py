"""Which instance a source leads to for a brand, a country and segments."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.core.clock import now_ms
from app.core.refusals import Code, Refused
from app.services.config import ConfigSnapshot
from app.services.eligibility import eligibility_error
from app.services.scope import BrandRef

STATUS_PREFERENCE = ("Active", "Pending")


def instance_definition(
    config: ConfigSnapshot, instance_id: str, operator_id: str
) -> dict[str, Any]:
    """The definition of an instance named directly. An instance exists for an operator when
    one of its brands may play it: another operator's instance is as unknown as a missing one."""
    definition = config.instances.get(instance_id)
    prefix = operator_id + ":"
    if definition is None or not any(
        brand.startswith(prefix) for brand in definition["allowed_brands"]
    ):
        raise Refused(Code.INSTANCE_NOT_FOUND, f"Instance {instance_id} does not exist.")
    return definition


def resolve_source_instance(
    config: ConfigSnapshot,
    brand: BrandRef,
    source_id: str,
    country: str,
    segments: Iterable[str] | None,
) -> dict[str, Any]:
    """The source's eligible instance, Active first, else Pending; else the refusal."""
    source = config.source(brand.path, source_id)
    if source is None:
        raise Refused(Code.SOURCE_NOT_FOUND, f"Source {source_id} of {brand.path} does not exist.")
    first_refusal: Refused | None = None
    eligible: list[dict[str, Any]] = []
    for instance_id in source["instance_ids"]:
        definition = config.instances.get(instance_id)
        if definition is None:
            continue
        refusal = eligibility_error(definition, brand.path, country, segments)
        if refusal is None:
            eligible.append(definition)
        elif first_refusal is None:
            first_refusal = refusal
    now = now_ms()
    for status in STATUS_PREFERENCE:
        for definition in eligible:
            end = definition["timestamp_end"]
            # Past its end but not yet terminated (the scheduler lags): not on offer.
            if config.statuses.get(definition["id"]) == status and (end is None or now < end):
                return definition
    if first_refusal is not None and not eligible:
        # The player's own refusal (403 BRAND/COUNTRY/SEGMENT_NOT_ALLOWED), as when the
        # instance is named directly: one code, one status.
        raise first_refusal
    raise Refused(Code.NO_ACTIVE_INSTANCE, f"Source {source_id} has no active or pending instance.")
