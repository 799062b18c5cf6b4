"""Who may play an instance: brand, country, segments. Each refusal has its own code."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.core.refusals import Code, Refused


def eligibility_error(
    definition: dict[str, Any], brand_path: str, country: str, segments: Iterable[str] | None
) -> Refused | None:
    """The first rule the player breaks, or None. `segments` None: not known, not checked."""
    instance_id = definition["id"]
    if brand_path not in definition["allowed_brands"]:
        return Refused(
            Code.BRAND_NOT_ALLOWED, f"Brand {brand_path} may not play instance {instance_id}."
        )
    allowed = definition["allowed_countries"]
    if country in definition["blocked_countries"] or (allowed and country not in allowed):
        return Refused(
            Code.COUNTRY_NOT_ALLOWED, f"Country {country} may not play instance {instance_id}."
        )
    required = definition["segments"]
    if required and segments is not None and not set(required) & set(segments):
        return Refused(
            Code.SEGMENT_NOT_ALLOWED,
            f"Instance {instance_id} is for segments {', '.join(required)}.",
        )
    return None


def check_eligible(
    definition: dict[str, Any], brand_path: str, country: str, segments: Iterable[str] | None
) -> None:
    error = eligibility_error(definition, brand_path, country, segments)
    if error is not None:
        raise error
