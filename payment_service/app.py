"""The HTTP API: ``POST /pay``, ``POST /internal/generate-report``, fault knobs and health.

``create_app(settings)`` wires the store, the fault injector and the internal token into a
FastAPI app. Requests are parsed and validated by hand (``validation.py``) so every refusal has the
contract's precise status and code; the OpenAPI document still describes every shape.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import logging
import math
import secrets
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from payment_contract import DECLINING_TEST_CARDS, TRANSIENT_DECLINE_CODES
from payment_service import schemas
from payment_service.errors import ApiError
from payment_service.expiry import DEFAULT_KEY_TTL, purge_keys
from payment_service.faults import FaultConfigError, FaultInjector, Faults
from payment_service.store import KeyTaken, Store, StoredAnswer, timestamp
from payment_service.tracing import scrub
from payment_service.validation import (
    PaymentRequest,
    idempotency_key,
    parse_json_object,
    validate_payment,
)

log = logging.getLogger("payment_service")

#: The error ``code`` of a decline, by decline code (Stripe uses these; the rest are card_declined).
DECLINE_ERROR_CODES = {
    "processing_error": "processing_error",
    "expired_card": "expired_card",
    "incorrect_cvc": "incorrect_cvc",
}
DECLINE_MESSAGES = {
    "generic_decline": "Your card was declined.",
    "insufficient_funds": "Your card has insufficient funds.",
    "lost_card": "Your card was declined (reported lost).",
    "stolen_card": "Your card was declined (reported stolen).",
    "expired_card": "Your card has expired.",
    "incorrect_cvc": "Your card's security code is incorrect.",
    "processing_error": "An error occurred while processing your card. Try again.",
}
GARBAGE_TEXT = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
#: The largest body read: a contract body at every limit is ~330 KB (50 metadata values of 500
#: escaped emoji); a bigger one is refused before it fills the service's memory.
MAX_BODY_BYTES = 1024 * 1024


def _too_large() -> ApiError:
    return ApiError(
        413,
        "request_too_large",
        f"The body is larger than {MAX_BODY_BYTES} bytes.",
    )


async def read_body(request: Request) -> bytes:
    """The request's body, or a 413 once it passes ``MAX_BODY_BYTES`` (by Content-Length, or
    counted as it streams in when chunked), so a huge body is never held whole. A client gone
    before its body ended is a 400 nobody reads, not an unhandled error and a traceback in the log."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise _too_large()
            chunks.append(chunk)
    except ClientDisconnect:
        raise ApiError(
            400,
            "invalid_json",
            "The body ended early: the client closed the connection.",
        ) from None
    return b"".join(chunks)


@dataclass(frozen=True, slots=True)
class Settings:
    """What the app needs to run (built by ``__main__`` from flags and env)."""

    db_path: str
    token: str
    faults: Faults = field(default_factory=Faults)
    fault_seed: int | None = None
    #: How long an idempotency key's answer is replayed (None: forever); see ``expiry``.
    key_ttl: dt.timedelta | None = DEFAULT_KEY_TTL


def _error_responses(*codes: int) -> dict:
    return {code: {"model": schemas.ErrorBody} for code in codes}


def create_app(settings: Settings) -> FastAPI:
    """The payment service app over the SQLite file in ``settings.db_path``."""
    store = Store(settings.db_path, settings.key_ttl)
    faults = FaultInjector(settings.faults, settings.fault_seed)
    in_flight: set[str] = set()
    app = FastAPI(
        title="Reference payment service",
        version="1.0.0",
        description="The contract the payment load generator targets. See docs/contract.md.",
    )
    app.state.store = store
    app.state.faults = faults
    # set when the server starts to stop: fault sleeps end then (``fault_sleep``)
    app.state.stopping = stopping = asyncio.Event()

    async def fault_sleep(seconds: float) -> None:
        """Sleep a fault's delay (latency, stall); when the service stops meanwhile, answer 503
        at once: the shutdown waits for no fault, and a stalled payment (stored) is replayed
        to the resend with its key."""
        try:
            await asyncio.wait_for(stopping.wait(), seconds)
        except TimeoutError:
            return
        raise ApiError(
            503,
            "service_unavailable",
            "The service is shutting down; retry with the same Idempotency-Key.",
            type_="api_error",
        )

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Starlette's own refusals (no such path, wrong method) in the contract's shape."""
        code, message = {
            404: (
                "not_found",
                f"No such endpoint: {request.method} {request.url.path}.",
            ),
            405: (
                "method_not_allowed",
                f"{request.method} is not allowed on {request.url.path}.",
            ),
        }.get(exc.status_code, ("http_error", str(exc.detail)))
        return ApiError(exc.status_code, code, message, headers=exc.headers).response()

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        # scrubbed before it is cut: a cut could leave a card number or the token in half
        log.error("unhandled %s: %s", type(exc).__name__, scrub(str(exc))[:200])
        return ApiError(
            500,
            "internal_error",
            "Internal error; retry with the same Idempotency-Key.",
            type_="api_error",
        ).response()

    background: set[asyncio.Task] = set()

    @app.on_event("startup")
    async def start_purge() -> None:
        if settings.key_ttl is not None:
            # by the service's clock, the one ``answer_for`` reads a key's age by
            async def purge(limit: int) -> int:
                if store.in_memory:
                    return store.purge_keys(faults.now(), limit)
                return await asyncio.to_thread(store.purge_keys, faults.now(), limit)

            background.add(asyncio.create_task(purge_keys(purge, settings.key_ttl)))

    @app.on_event("shutdown")
    def close_store() -> None:
        for task in background:
            task.cancel()
        store.close()

    def require_token(request: Request) -> None:
        header = request.headers.get("authorization") or ""
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise ApiError(
                401,
                "missing_token",
                "Send Authorization: Bearer <PAYMENT_INTERNAL_TOKEN>.",
                type_="authentication_error",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not hmac.compare_digest(given.strip().encode(), settings.token.encode()):
            raise ApiError(
                403,
                "invalid_token",
                "The internal token is wrong.",
                type_="authentication_error",
            )

    # HEAD too: uptime checkers and some load balancers probe with it (405 read as "down")
    @app.api_route("/health", methods=["GET", "HEAD"])
    async def health() -> dict:
        return {"status": "ok", "faults": faults.faults.active}

    @app.post(
        "/pay",
        status_code=201,
        summary="Charge a card",
        responses={
            201: {
                "model": schemas.Payment,
                "headers": {
                    "Idempotent-Replayed": {
                        "description": "`true` when the answer is the stored one for this key.",
                        "schema": {"type": "string", "enum": ["true"]},
                    }
                },
            },
            **_error_responses(400, 402, 409, 413, 422, 429, 500, 503),
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/PayRequest"}
                    }
                },
            },
            "parameters": [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                }
            ],
        },
    )
    async def pay(request: Request) -> Response:
        wait = faults.rate_limited()
        if wait is not None:
            raise ApiError(
                429,
                "rate_limited",
                "Too many requests; retry after the Retry-After seconds.",
                type_="rate_limit_error",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        body = parse_json_object(
            request.headers.get("content-type"), await read_body(request)
        )
        key = idempotency_key(request.headers)
        # expiry by the service's clock, the one that stamps ``created`` (off by --clock-offset-s)
        payment = validate_payment(body, faults.now().date())
        if key in in_flight:
            raise ApiError(
                409,
                "idempotency_key_in_use",
                "A request with this Idempotency-Key is still being processed; retry shortly.",
                "Idempotency-Key",
            )
        stored = store.answer_for(key, faults.now())
        # the replay-charges fault: a service that forgets what the key paid charges the same
        # body again (another body is still refused)
        replace = faults.faults.replay_charges
        if stored is not None and (
            not replace or stored.request_hash != payment.request_hash
        ):
            return replay(stored, payment)
        in_flight.add(key)
        try:
            delay = faults.delay_s()
            if delay:
                await fault_sleep(delay)
            phase = faults.error_phase()
            if phase == "before":
                raise ApiError(
                    503,
                    "service_unavailable",
                    "Temporarily unavailable; retry with the same key.",
                    type_="api_error",
                )
            status, answer = charge(store, payment, key, faults.now(), replace)
        # another service process on this database answered the key meanwhile
        except KeyTaken as taken:
            return replay(taken.stored, payment)
        finally:
            in_flight.discard(key)
        if phase == "after":
            raise ApiError(
                500,
                "internal_error",
                "Internal error; retry with the same Idempotency-Key.",
                type_="api_error",
            )
        if faults.stall():
            await fault_sleep(faults.faults.stall_s)
        garbage = faults.garbage()
        if garbage:
            return garbage_response(garbage, status, answer)
        return JSONResponse(answer, status)

    @app.post(
        "/internal/generate-report",
        summary="Totals of succeeded and declined payments (internal token required)",
        responses={
            200: {"model": schemas.Report},
            **_error_responses(400, 401, 403, 413),
        },
        openapi_extra={
            "requestBody": {
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/ReportRequest"}
                    }
                }
            }
        },
    )
    async def generate_report(request: Request) -> dict:
        require_token(request)
        raw = await read_body(request)
        body = (
            parse_json_object(request.headers.get("content-type"), raw)
            if raw.strip()
            else {}
        )
        batch_id, start, end = report_filter(body)
        if faults.faults.report_latency_ms:
            await fault_sleep(faults.faults.report_latency_ms / 1000)
        tampered = faults.faults.report_tamper
        # off the event loop: a long report holds up no payment (see ``Store.report_rows``)
        read = (batch_id, start, end, tampered)
        rows, latest = (
            store.report_rows(*read)
            if store.in_memory
            else await asyncio.to_thread(store.report_rows, *read)
        )
        report = build_report(rows, body, faults.now())
        if tampered:
            tamper(report, latest)
        return report

    @app.get(
        "/internal/faults",
        summary="Current fault knobs (internal token required)",
        responses={200: {"model": schemas.FaultsModel}, **_error_responses(401, 403)},
    )
    async def get_faults(request: Request) -> dict:
        require_token(request)
        return faults.faults.as_dict()

    @app.put(
        "/internal/faults",
        summary="Change fault knobs while running (internal token required)",
        responses={
            200: {"model": schemas.FaultsModel},
            **_error_responses(400, 401, 403, 413),
        },
        openapi_extra={
            "requestBody": {
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/FaultsModel"}
                    }
                }
            }
        },
    )
    async def put_faults(request: Request) -> dict:
        require_token(request)
        changes = parse_json_object(
            request.headers.get("content-type"), await read_body(request)
        )
        try:
            faults.set(faults.faults.updated(changes))
        except FaultConfigError as exc:
            raise ApiError(400, "invalid_faults", str(exc), exc.knob) from None
        log.warning("faults now: %s", ", ".join(faults.faults.active) or "off")
        return faults.faults.as_dict()

    def openapi() -> dict:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = doc.setdefault("components", {}).setdefault("schemas", {})
            for model in (
                schemas.PayRequest,
                schemas.ReportRequest,
                schemas.FaultsModel,
            ):
                schema = model.model_json_schema(
                    ref_template="#/components/schemas/{model}", by_alias=True
                )
                components.update(schema.pop("$defs", {}))
                components[model.__name__] = schema
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi
    return app


def replay(stored: StoredAnswer, payment: PaymentRequest) -> JSONResponse:
    """The answer stored for the key, or a 422 when it was stored for another body."""
    if stored.request_hash != payment.request_hash:
        raise ApiError(
            422,
            "idempotency_key_reused",
            "This Idempotency-Key was used with a different request body; use a new key.",
            "Idempotency-Key",
        )
    return JSONResponse(
        stored.response, stored.status_code, headers={"Idempotent-Replayed": "true"}
    )


def charge(
    store: Store,
    payment: PaymentRequest,
    key: str,
    now: dt.datetime,
    replace: bool = False,
) -> tuple[int, dict]:
    """Decide the payment (test cards decline), store it with its answer, return (status, answer);
    ``KeyTaken`` when the key got its answer meanwhile (unless ``replace``)."""
    payment_id = "pay_" + secrets.token_hex(12)
    decline = DECLINING_TEST_CARDS.get(payment.number)
    if decline is None:
        status, answer = (
            201,
            {
                "id": payment_id,
                "object": "payment",
                "status": "succeeded",
                "amount": payment.amount,
                "currency": payment.currency,
                "card": {"brand": payment.brand, "last4": payment.last4},
                "created": int(now.timestamp()),
                "description": payment.description,
                "metadata": payment.metadata,
            },
        )
    else:
        status, answer = (
            402,
            {
                "error": {
                    "type": "card_error",
                    "code": DECLINE_ERROR_CODES.get(decline, "card_declined"),
                    "decline_code": decline,
                    "param": None,
                    "message": DECLINE_MESSAGES[decline],
                    "payment_id": payment_id,
                    "retryable": decline in TRANSIENT_DECLINE_CODES,
                }
            },
        )
    store.record_payment(
        {
            "id": payment_id,
            "status": "declined" if decline else "succeeded",
            "amount": payment.amount,
            "currency": payment.currency,
            "brand": payment.brand,
            "last4": payment.last4,
            "fingerprint": payment.fingerprint,
            "decline_code": decline,
            "customer_id": payment.customer_id,
            "batch_id": payment.metadata.get("batch_id"),
            "description": payment.description,
            "metadata": payment.metadata,
            "idempotency_key": key,
            "created_at": timestamp(now),
        },
        key,
        payment.request_hash,
        status,
        answer,
        now,
        replace,
    )
    return status, answer


def garbage_response(kind: str, status: int, answer: dict) -> Response:
    """A broken answer (the payment itself was stored as usual)."""
    if kind == "text":
        return Response(GARBAGE_TEXT, status, media_type="text/html")
    if kind == "truncated":
        full = JSONResponse(answer).body
        return Response(full[: len(full) // 2], status, media_type="application/json")
    return JSONResponse({"ok": True, "result": "done"}, status)


def _instant(body: dict, key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(
            400, "invalid_range", f"{key!r} must be an ISO 8601 string.", key
        )
    try:
        # 3.11+ reads "Z" and a lower-case "t", but not RFC 3339's lower-case "z"
        zulu = value[:-1] + "Z" if value.endswith("z") else value
        moment = dt.datetime.fromisoformat(zulu)
    except ValueError:
        raise ApiError(
            400,
            "invalid_range",
            f"{key!r} is not ISO 8601 (e.g. 2026-11-25T10:00:00Z).",
            key,
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    try:
        return timestamp(moment)
    # 0001-01-01T00:00+05:00 is valid ISO 8601, and before the year 1 once in UTC
    except OverflowError:
        raise ApiError(
            400,
            "invalid_range",
            f"{key!r} is outside the years 1 to 9999 in UTC.",
            key,
        ) from None


def report_filter(body: dict) -> tuple[str | None, str | None, str | None]:
    """(batch_id, from, to) from a report request body; 400 on unknown keys or a bad range."""
    unknown = sorted(set(body) - {"batch_id", "from", "to"})
    if unknown:
        raise ApiError(
            400,
            "invalid_filter",
            f"Unknown filter key(s) {', '.join(unknown)}; use batch_id, from, to.",
            unknown[0],
        )
    batch_id = body.get("batch_id")
    if batch_id is not None and (not isinstance(batch_id, str) or not batch_id):
        raise ApiError(
            400, "invalid_filter", "batch_id must be a non-empty string.", "batch_id"
        )
    start, end = _instant(body, "from"), _instant(body, "to")
    if start is not None and end is not None and start > end:
        raise ApiError(400, "invalid_range", "'from' is after 'to'.", "from")
    return batch_id, start, end


def build_report(rows: list[tuple], filter_: dict, now: dt.datetime) -> dict:
    """The report body from (status, currency, brand, count, amount) groups."""
    counts = {"succeeded": 0, "declined": 0}
    totals: dict[str, dict[str, int]] = {}
    brands: dict[str, int] = {}
    for status, currency, brand, count, amount in rows:
        counts[status] += count
        if status != "succeeded":
            continue
        total = totals.setdefault(currency, {"count": 0, "amount": 0})
        total["count"] += count
        total["amount"] += amount
        brands[brand] = brands.get(brand, 0) + count
    return {
        "report_id": "rpt_" + secrets.token_hex(8),
        "generated_at": now.isoformat().replace("+00:00", "Z"),
        # quoted as sent, but never a card number or the token (a slip in the wrong field)
        "filter": {k: scrub(str(v)) for k, v in filter_.items() if v is not None},
        "payments": counts,
        "totals": totals,
        "brands": brands,
    }


def tamper(report: dict, latest: tuple | None) -> None:
    """Leave one succeeded payment out of the report (the report-tamper fault)."""
    if latest is None:
        return
    currency, brand, amount = latest
    total = report["totals"][currency]
    total["count"] -= 1
    total["amount"] -= amount
    if not total["count"]:
        del report["totals"][currency]
    report["brands"][brand] -= 1
    report["payments"]["succeeded"] -= 1
