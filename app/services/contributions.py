"""Player contributions: v1 by instance, v1 by source, v2 with linked instances.

The synchronous path costs one Redis command: configuration comes from the process cache,
the token was checked locally, and the contribution is one EVALSHA that also decides the
win, writes the ledger, the win record, the event and the idempotency record.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rq import Queue

from app.core import jsonio
from app.core.clock import now_ms
from app.core.config import Settings
from app.core.metrics import Metrics, new_metrics
from app.core.money import format_amount
from app.core.queues import CALLBACK_QUEUE
from app.core.refusals import Code, Refused
from app.core.security import Principal
from app.services.callbacks import (
    CALLBACK_HEADERS_TTL_S,
    check_callback_headers,
    check_callback_url,
)
from app.services.charges import Charge, contribution_charge, preference_charge, wager_micros
from app.services.config import ConfigCache, ConfigSnapshot
from app.services.conversion import Converter
from app.services.deadletters import retry_within
from app.services.eligibility import check_eligible
from app.services.refusals import refused
from app.services.scope import BrandRef, check_operator, qualified_brand, resolve_brand
from app.services.targets import instance_definition, resolve_source_instance
from app.store import ScriptRefusal, Store
from app.store.contributions import ContributionOutcome, PotDraw, PricedPreference
from app.store.jobs import enqueue_once
from app.triggers import pot_inputs

CONTRIBUTION_JOB_TIMEOUT_S = 60
ASYNC_KEY_PREFIX = "async."  # the job's own idempotency key when the caller sent none
# Players' preferred values as last seen, so that their contributions are priced before the
# script runs (one round trip); a changed one costs one more (the script names it).
PREFERENCES_CACHED = 10_000
PRICING_ATTEMPTS = 3


@dataclass(frozen=True)
class Contribution:
    """One validated contribution to one instance, ready for the script."""

    definition: dict[str, Any]
    brand: BrandRef
    player_id: str
    currency: str  # the player's (wager) currency
    converter: Converter
    charge: Charge  # the default charge (a player's preferred value replaces a Fixed one)
    base_wager: int  # instance micros
    source_id: str | None
    gameround_id: str | None
    idempotency_key: str | None
    request_hash: str
    metadata: Any
    event_metadata: Any
    # the fingerprint line of the record format before the lean one (legacy_fingerprint)
    legacy_hash: str = ""


@dataclass(frozen=True)
class LinkedRefusal:
    """A linked instance of a v2 contribution refused before reaching Redis."""

    instance_id: str
    error: Refused


@dataclass(frozen=True)
class ContributionResult:
    body: dict[str, Any]
    replay: bool
    contribution_id: str
    instance_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Contribution-Id": self.contribution_id, "X-Instance-Id": self.instance_id}


def request_digest(body: dict[str, Any]) -> bytes:
    """A stable fingerprint of a request (sha256), so a reused idempotency key can be
    compared. The player's session token is left out: a retry may carry a refreshed one."""
    body = {key: value for key, value in body.items() if key != "token"}
    if isinstance(body.get("player"), dict):
        body["player"] = {k: v for k, v in body["player"].items() if k != "token"}

    def default(value: Any) -> Any:
        if isinstance(value, Decimal):
            return format_amount(value)
        raise TypeError(type(value).__name__)

    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=default)
    return hashlib.sha256(canonical.encode()).digest()


def job_body(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """The request as its job carries it: without the player's session token (nothing here
    uses it) and without the callback's header values (held apart until delivered). The job
    contributes with this body, so a run repeated by RQ has the same fingerprint."""
    if kind == "v2":
        options = body["options"]
        callback = {**options["callback"], "headers": {}}
        player = {**body["player"], "token": None}
        return {**body, "player": player, "options": {**options, "callback": callback}}
    return {**body, "token": "", "callback": {**body["callback"], "headers": {}}}


def fingerprint(request: dict[str, Any], brand: str, currency: str, metadata: Any) -> str:
    """The line the idempotency record keeps: the request's hash (sha256, base64url, 43
    characters), then what the response adds to the stored outcome as a JSON array [brand,
    currency, metadata], so a caller who lost the response can read it back. All of it derives
    from the request, so equal requests have equal lines."""
    digest = base64.urlsafe_b64encode(request_digest(request)).rstrip(b"=").decode()
    return f"{digest} {jsonio.dumps([brand, currency, metadata])}"  # json escapes newlines


def legacy_fingerprint(request: dict[str, Any], brand: str, currency: str, metadata: Any) -> str:
    """The fingerprint line of the records written before the lean one (hex hash, a JSON
    object): a retry of a request first made before an upgrade still matches its record for
    the idempotency window. Needed for one IDEMPOTENCY_TTL_SECONDS after the upgrade."""
    context = jsonio.dumps({"brand": brand, "currency": currency, "metadata": metadata})
    return f"{request_digest(request).hex()} {context}"


def record_context(line: str) -> tuple[str, str, Any] | None:
    """(brand, currency, metadata) of an idempotency record's fingerprint line, of either
    format; None when it has none (a record of the store's own tests)."""
    context = line.partition(" ")[2]
    if not context:
        return None
    found = json.loads(context, parse_float=Decimal)
    if isinstance(found, list):
        return found[0], found[1], found[2]
    return found["brand"], found["currency"], found["metadata"]


@dataclass(frozen=True)
class ContributionV2Result:
    items: list[dict[str, Any]]
    replay: ContributionResult | None  # the target's, when nothing new was applied


def delivery_id_for(operator_id: str, instance_id: str, idempotency_key: str) -> str:
    """One delivery id per idempotency key (scoped like the key: operator and instance)."""
    scope = f"{operator_id}\n{instance_id}\n{idempotency_key}"
    return hashlib.sha256(scope.encode()).hexdigest()[:32]


class ContributionService:
    def __init__(
        self,
        store: Store,
        config: ConfigCache,
        settings: Settings,
        queue: Queue | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics or new_metrics()
        self._config = config
        self._idempotency_ttl_ms = settings.idempotency_ttl_s * 1000
        self._callback_allowlist = settings.callback_allowlist
        self.queue = queue
        self._preferences: dict[tuple[str, str], str] = {}  # (instance, player key) -> token
        # A job whose worker died is retried (RQ's registry cleanup), as is one the store
        # failed, for ASYNC_RETRY_HOURS; then it is a dead letter (app.services.deadletters).
        self._retry = retry_within(settings.async_retry_hours * 3600)

    # -- asynchronous mode: validate now, contribute in a worker, answer the callback ----
    async def enqueue(self, principal: Principal, kind: str, body: dict[str, Any]) -> str:
        """Refuse what can be refused now (the current state included); queue the rest,
        once per idempotency key. Returns the delivery id, derived from the key: a
        duplicate request enqueues nothing and gets the same id."""
        # What the published schema refuses (a reserved header name) is refused first.
        if kind == "v2":
            check_callback_headers(
                body["options"]["callback"]["headers"], "options.callback.headers"
            )
            target = (await self.prepare_v2(principal, body))[0]
            callback = body["options"]["callback"]
            key = body["options"].get("idempotency_key")
        else:
            check_callback_headers(body["callback"]["headers"], "callback.headers")
            target = await self.prepare_v1(principal, body)
            callback = body["callback"]
            key = body["idempotency_key"]
        assert isinstance(target, Contribution)  # a refused target raised
        await self._refuse_now(target)
        await check_callback_url(callback["url"], self._callback_allowlist)
        if self.queue is None:
            raise Refused(Code.QUEUE_UNAVAILABLE, "Asynchronous contributions are disabled.")
        instance_id = target.definition["id"]
        # Without the caller's key the job brings its own, so a retried job applies once.
        delivery_id = delivery_id_for(principal.operator_id, instance_id, key) if key else None
        delivery_id = delivery_id or uuid.uuid4().hex
        who = {
            "username": principal.username,
            "operator_id": principal.operator_id,
            "roles": list(principal.roles),
        }
        # The caller's headers (credentials, often) are held apart until delivered, never in
        # the job: RQ keeps a job's arguments in Redis and writes them into its log lines.
        held_before = False
        if callback["headers"]:
            held_before = await self._store.hold_callback_headers(
                delivery_id, callback["headers"], CALLBACK_HEADERS_TTL_S
            )
        queued = await asyncio.to_thread(
            enqueue_once,
            self.queue,
            "workers.jobs.run_contribution",
            who,
            kind,
            jsonio.dumps(job_body(kind, body)),
            delivery_id,
            CALLBACK_QUEUE,
            None if key else ASYNC_KEY_PREFIX + delivery_id,
            job_id=f"contribution-{delivery_id}",
            description=f"contribution {delivery_id}",
            job_timeout=CONTRIBUTION_JOB_TIMEOUT_S,
            retry=self._retry,
        )
        if callback["headers"] and not queued and not held_before:
            # A duplicate of a request whose delivery is done: nothing will use them.
            await self._store.drop_callback_headers(delivery_id)
        return delivery_id

    async def _refuse_now(self, contribution: Contribution) -> None:
        """What the script would refuse with the current state (status, window, opt-in)."""
        definition = contribution.definition
        refusal = await self._store.refusal_now(
            definition["id"],
            operator_id=contribution.brand.operator_id,
            brand_id=contribution.brand.brand_id,
            player_id=contribution.player_id,
            now_ms=now_ms(),
            opt_in_required=bool(definition["opt_in_required"]),
        )
        if refusal is not None:
            raise refused(ScriptRefusal(refusal), definition["id"])

    async def callback_secret(self, operator_id: str) -> str | None:
        operator = (await self._config.get()).operators.get(operator_id)
        return None if operator is None else operator.get("callback_secret")

    # -- preparing: everything that can be refused without touching Redis ---------------
    async def prepare_v1(self, principal: Principal, body: dict[str, Any]) -> Contribution:
        config = await self._config.get()
        brand = resolve_brand(principal, body["brand_id"], config)
        if "source_id" in body:
            definition = resolve_source_instance(
                config, brand, body["source_id"], body["player_country"], body["segments"] or []
            )
            source_id: str | None = body["source_id"]
        else:
            definition = instance_definition(config, body["instance_id"], brand.operator_id)
            check_eligible(definition, brand.path, body["player_country"], None)
            source_id = None
        return self._prepare(
            config,
            definition,
            brand,
            player_id=body["player_id"],
            wager=body["base_wager"],
            currency=body["currency"],
            source_id=source_id,
            gameround_id=body["gameround_id"],
            idempotency_key=body["idempotency_key"],
            request=body,
            metadata=body["metadata"],
            event_metadata=body["event_metadata"],
        )

    async def prepare_v2(
        self, principal: Principal, body: dict[str, Any]
    ) -> list[Contribution | LinkedRefusal]:
        """The target first, then its directly linked instances (links are not transitive).

        A refused target raises; a refused linked instance (the player is not eligible there,
        or the wager is beyond it) is a LinkedRefusal, reported in its own item."""
        config = await self._config.get()
        check_operator(principal, body["operator_id"])
        player = body["player"]
        brand = resolve_brand(
            principal, qualified_brand(body["operator_id"], player["brand_id"]), config
        )
        target = body["target"]
        segments = player["segments"] or []
        if target["type"] == "instance":
            definition = instance_definition(config, target["id"], brand.operator_id)
            check_eligible(definition, brand.path, player["country"], segments)
        else:
            definition = resolve_source_instance(
                config, brand, target["id"], player["country"], segments
            )
        source = body["source"] or {}
        source_id = source.get("id") or (target["id"] if target["type"] == "source" else None)

        def prepare(instance: dict[str, Any]) -> Contribution:
            return self._prepare(
                config,
                instance,
                brand,
                player_id=player["id"],
                wager=body["base_wager"]["value"],
                currency=body["base_wager"]["currency"],
                source_id=source_id,
                gameround_id=source.get("gameround_id"),
                idempotency_key=body["options"].get("idempotency_key"),
                request=body,
                metadata=body["metadata"],
                event_metadata=body["event_metadata"],
            )

        prepared: list[Contribution | LinkedRefusal] = [prepare(definition)]
        for linked in definition["linked_instances"]:
            instance = config.instances.get(linked)
            if instance is None:
                continue
            try:
                check_eligible(instance, brand.path, player["country"], segments)
                prepared.append(prepare(instance))
            except Refused as error:
                prepared.append(LinkedRefusal(linked, error))
        return prepared

    def _prepare(
        self,
        config: ConfigSnapshot,
        definition: dict[str, Any],
        brand: BrandRef,
        *,
        player_id: str,
        wager: Decimal,
        currency: str,
        source_id: str | None,
        gameround_id: str | None,
        idempotency_key: str | None,
        request: dict[str, Any],
        metadata: Any,
        event_metadata: Any,
    ) -> Contribution:
        converter = config.converter(brand.path)
        if not converter.knows(currency):
            raise Refused(Code.UNKNOWN_CURRENCY, f"Currency {currency} is not configured.")
        base_wager = wager_micros(definition, converter, wager, currency)
        charge = contribution_charge(definition, converter, wager, currency)
        return Contribution(
            definition=definition,
            brand=brand,
            player_id=player_id,
            currency=currency,
            converter=converter,
            charge=charge,
            base_wager=base_wager,
            source_id=source_id,
            gameround_id=gameround_id,
            idempotency_key=idempotency_key,
            # Only a request with an idempotency key is ever compared.
            request_hash=fingerprint(request, brand.path, currency, metadata)
            if idempotency_key
            else "",
            metadata=metadata,
            event_metadata=event_metadata,
            legacy_hash=legacy_fingerprint(request, brand.path, currency, metadata)
            if idempotency_key
            else "",
        )

    # -- settling: the one script call ---------------------------------------------------
    def _priced(self, contribution: Contribution, token: str | None) -> PricedPreference | None:
        """The charge of the stored preference `token` ('<micros>|<currency>|<value_raw>')
        for this contribution, by the one charge rule (charges.preference_charge)."""
        if token is None:
            return None
        _, value_currency, raw = token.split("|", 2)
        if not contribution.converter.knows(value_currency):
            raise Refused(
                Code.UNKNOWN_CURRENCY,
                f"The player's preferred value is in {value_currency}, which is not configured.",
            )
        charge = preference_charge(
            contribution.definition,
            contribution.converter,
            Decimal(raw),
            value_currency,
            contribution.currency,
        )
        return PricedPreference(token, charge.paid, charge.credited)

    async def settle(self, contribution: Contribution) -> ContributionResult:
        definition = contribution.definition
        brand = contribution.brand
        cache_key = (definition["id"], f"{brand.path}:{contribution.player_id}")
        for attempt in range(PRICING_ATTEMPTS):
            try:
                return await self._settle(
                    contribution, self._priced(contribution, self._preferences.get(cache_key))
                )
            except ScriptRefusal as refusal:
                if refusal.code is not Code.PREFERENCE_UNPRICED or attempt + 1 == PRICING_ATTEMPTS:
                    raise refused(refusal, definition["id"]) from None
                if len(self._preferences) >= PREFERENCES_CACHED:
                    self._preferences.clear()
                self._preferences[cache_key] = refusal.detail
        raise AssertionError("unreachable")

    def script_call(
        self, contribution: Contribution, preference: PricedPreference | None = None
    ) -> dict[str, Any]:
        """The arguments of the one contribute script call (ContributionStore.contribute;
        the sizing bench pipelines them through contribute_call)."""
        definition = contribution.definition
        now = now_ms()
        currency = contribution.currency
        instance_currency = definition["currency"]
        multipliers = contribution.converter.multipliers
        shown = {
            "currency": currency,
            "rate": format_amount(multipliers[currency]),
            "instance_rate": format_amount(multipliers[instance_currency]),
            "digits": contribution.converter.minor_units(currency),
        }
        return {
            "operator_id": contribution.brand.operator_id,
            "brand_id": contribution.brand.brand_id,
            "player_id": contribution.player_id,
            "contribution_id": str(uuid.uuid4()),
            "event_id": str(uuid.uuid4()),
            "now_ms": now,
            "pots": [
                PotDraw(pot["id"], *pot_inputs(pot["trigger"], now)) for pot in definition["pots"]
            ],
            "amount": contribution.charge.credited,
            "base_wager": contribution.base_wager,
            "source_id": contribution.source_id,
            "gameround_id": contribution.gameround_id,
            "idempotency_key": contribution.idempotency_key,
            "request_hash": contribution.request_hash,
            "legacy_hash": contribution.legacy_hash,
            "idempotency_ttl_ms": self._idempotency_ttl_ms,
            "jackpot_name": definition["name"],
            "event_metadata": contribution.event_metadata,
            "currency_multipliers": multipliers,
            "paid": str(contribution.charge.paid),
            "preference": preference,
            "shown": shown,
        }

    async def _settle(
        self, contribution: Contribution, preference: PricedPreference | None
    ) -> ContributionResult:
        """One script call; a ScriptRefusal is the caller's to map."""
        outcome = await self._store.contribute(
            contribution.definition["id"], **self.script_call(contribution, preference)
        )
        if not outcome.replay:
            self._metrics.contributions.labels(outcome.instance_id).inc()
            if outcome.win_id is not None:
                withheld = "true" if outcome.win_withheld else "false"
                self._metrics.wins.labels(outcome.instance_id, withheld).inc()
        return ContributionResult(
            body=response_body(
                outcome,
                contribution.definition["currency"],
                contribution.converter,
                contribution.currency,
                contribution.metadata,
            ),
            replay=outcome.replay,
            contribution_id=outcome.contribution_id,
            instance_id=outcome.instance_id,
        )

    async def recorded(
        self, principal: Principal, instance_id: str, idempotency_key: str
    ) -> ContributionResult:
        """The response of the contribution made with this key (kept as long as the key)."""
        config = await self._config.get()
        definition = instance_definition(config, instance_id, principal.operator_id)
        found = await self._store.recorded(instance_id, principal.operator_id, idempotency_key)
        context = None if found is None else record_context(found[0])
        if found is None or context is None:
            raise Refused(
                Code.CONTRIBUTION_NOT_FOUND,
                f"No contribution to {instance_id} with this idempotency key is remembered.",
            )
        outcome = found[1]
        brand, currency, metadata = context
        body = response_body(
            outcome,
            definition["currency"],
            config.converter(brand),
            currency,
            metadata,
        )
        return ContributionResult(body, True, outcome.contribution_id, outcome.instance_id)

    async def contribute_v1(self, principal: Principal, body: dict[str, Any]) -> ContributionResult:
        return await self.settle(await self.prepare_v1(principal, body))

    async def contribute_v2(
        self, principal: Principal, body: dict[str, Any]
    ) -> ContributionV2Result:
        """One item per instance attempted; a failed target stops, a failed link does not.
        A replay: every applied item was a replay of an idempotency key (nothing changed).

        Two round trips whatever the number of links: the target's script first (its
        refusal means no link is attempted), then every link's script at once, so they go
        out in one write per Redis node (app.store.pipe); each script is still atomic for
        its instance, and a link's refusal is its own item."""
        items: list[dict[str, Any]] = []
        results: list[ContributionResult] = []
        prepared = await self.prepare_v2(principal, body)

        def attempted(index: int, contribution: Contribution, outcome: Any) -> None:
            item: dict[str, Any] = {
                "instance_id": contribution.definition["id"],
                "linked": index > 0,
            }
            if isinstance(outcome, Refused):
                item.update(success=False, error={"code": outcome.code, "error": outcome.message})
            else:
                results.append(outcome)
                item.update(
                    success=True,
                    result=outcome.body,
                    contribution_id=outcome.contribution_id,  # for callbacks
                )
            items.append(item)

        async def settled(contribution: Contribution) -> ContributionResult | Refused:
            try:
                return await self.settle(contribution)
            except Refused as error:
                return error

        target = prepared[0]
        assert not isinstance(target, LinkedRefusal)  # the target's refusal is raised
        first = await settled(target)
        attempted(0, target, first)
        if isinstance(first, Refused):
            return ContributionV2Result(items, None)
        links = [c for c in prepared[1:] if not isinstance(c, LinkedRefusal)]
        outcomes = iter(await asyncio.gather(*(settled(c) for c in links)))
        for index, contribution in enumerate(prepared[1:], start=1):
            if isinstance(contribution, LinkedRefusal):
                refusal = contribution.error
                items.append(
                    {
                        "instance_id": contribution.instance_id,
                        "linked": True,
                        "success": False,
                        "error": {"code": refusal.code, "error": refusal.message},
                    }
                )
            else:
                attempted(index, contribution, next(outcomes))
        replay = bool(results) and all(result.replay for result in results)
        return ContributionV2Result(items, results[0] if replay else None)


def response_body(
    outcome: ContributionOutcome,
    instance_currency: str,
    converter: Converter,
    currency: str,
    metadata: Any,
) -> dict[str, Any]:
    """The contribution response: the outcome, amounts in the player's currency.

    The charge is the outcome's `paid`, what the script charged whichever rule applied; a win
    is shown with the rates the outcome kept (`shown`), so a read-back answers byte for byte
    as the first answer did. (An outcome stored before it kept them shows the credited
    amount with today's rates.)"""
    shown = outcome.shown
    if shown.get("currency") == currency and "rate" in shown:
        converter = Converter(
            {instance_currency: Decimal(shown["instance_rate"]), currency: Decimal(shown["rate"])},
            {currency: int(shown["digits"])},
        )
    convert = converter.shown
    paid = (
        outcome.paid
        if outcome.paid is not None
        else convert(outcome.amount, instance_currency, currency)
    )
    return {
        "instance_id": outcome.instance_id,
        "timestamp": outcome.timestamp,
        "gameround_id": outcome.gameround_id,
        "win_amount": None
        if outcome.win_amount is None
        else convert(outcome.win_amount, instance_currency, currency),
        "win_pot_id": outcome.win_pot_id,
        "tickets_awarded": outcome.tickets_awarded,
        "raffle_round": outcome.raffle_round,
        "win_withheld": outcome.win_withheld,
        "contribution_currency": currency,
        "contribution_amount": paid,
        "metadata": metadata,
    }
