"""Reference checks of the admin operations, against a (possibly not yet written)
configuration.

Every write is validated against the whole configuration first (schema rules, then cross
references), so bad input changes nothing.
"""

from __future__ import annotations

from typing import Any

from app.core.refusals import Code, Refused
from app.core.security import Principal
from app.services.config import ConfigSnapshot
from app.services.scope import admin_instance


def invalid_reference(where: str, message: str) -> Refused:
    return Refused(Code.INVALID_REFERENCE, message, {where: [message]})


def platform_required(message: str) -> Refused:
    return Refused(Code.PLATFORM_REQUIRED, message)


def check_brands_exist(where: str, brands: list[str], config: ConfigSnapshot) -> None:
    for brand in brands:
        if not config.brand_exists(brand):
            raise invalid_reference(where, f"Brand {brand} does not exist.")


def check_currency_known(where: str, currency: str, config: ConfigSnapshot) -> None:
    if not config.currency_known(currency):
        raise invalid_reference(where, f"Currency {currency} is not configured.")


def check_instance_references(definition: dict[str, Any], config: ConfigSnapshot) -> None:
    where = f"instances.{definition['id']}"
    check_currency_known(where, definition["currency"], config)
    for currency in definition["contribution_limits"]:
        check_currency_known(where, currency, config)
    check_brands_exist(where, definition["allowed_brands"], config)
    for linked in definition["linked_instances"]:
        if linked not in config.instances:
            raise invalid_reference(where, f"Linked instance {linked} does not exist.")


def check_source_references(source: dict[str, Any], config: ConfigSnapshot) -> None:
    where = f"sources.{source['source_id']}"
    check_brands_exist(where, [source["owner_id"]], config)
    for instance_id in source["instance_ids"]:
        if instance_id not in config.instances:
            raise invalid_reference(where, f"Instance {instance_id} does not exist.")


def check_currencies_references(currencies: dict[str, Any], config: ConfigSnapshot) -> None:
    check_brands_exist("currencies", list(currencies["brand_overrides"]), config)
    for definition in config.instances.values():
        for currency in [definition["currency"], *definition["contribution_limits"]]:
            if currency not in currencies["multipliers"]:
                raise invalid_reference(
                    "currencies", f"Instance {definition['id']} uses {currency}."
                )


def check_visible_instances(
    by: Principal, where: str, instance_ids: list[str], config: ConfigSnapshot
) -> None:
    """Instances named in a body: another operator's is as unknown as a missing one."""
    for instance_id in instance_ids:
        try:
            admin_instance(by, config.instances.get(instance_id), instance_id, own=False)
        except Refused:
            raise invalid_reference(where, f"Instance {instance_id} does not exist.") from None
