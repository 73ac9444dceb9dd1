"""The payment API client: the one module that knows the contract over HTTP.

Journeys call ``pay`` and ``generate_report`` and get typed answers back; they never build JSON,
headers or parse responses (the error probes alone build the bad requests they send, through
``expect``, which judges the answer). The client:

* builds bodies and headers (``Idempotency-Key``, the internal token, trace headers);
* names every request for Locust's stats table (``checkout: pay``, ``batch_report: report``);
* validates every answer against the contract and marks it a Locust success or failure;
* resends with the **same** idempotency key after a timeout, connection error, 5xx, 409 or an
  unreadable 201 or 402 body (bounded, exponential backoff with full jitter, or longer when
  the 5xx's or 409's ``Retry-After`` asks), and waits ``Retry-After`` on 429;
* detects duplicate charges: an answer for a key naming another payment id than an earlier one
  (the failure message is the same for all, so Locust's failures table keeps one row; the ids of
  the first few are logged).

Card numbers, CVCs and the token never appear in a failure message.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import logging
import math
import random
import re
import time
import urllib.parse
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import gevent
from gevent import getcurrent

from journeys import tracing
from journeys.content_coding import UNDECODED, undecoded, unreadable
from journeys.data import compact_json, flat_json, string_json
from journeys.report_shape import report_shape_problem
from journeys.results import ledger
from journeys.retry_after import RETRY_AFTER_CAP_S, retry_after_s
from journeys.wording import quotable_code
from payment_contract import PAY_PATH, REPORT_PATH

if TYPE_CHECKING:
    from journeys.data import Card, Customer

log = logging.getLogger(__name__)

JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
#: A 429 whose Retry-After is unreadable waits like this many backoffs (full jitter up to ~4 s).
RATE_LIMIT_BACKOFF_STEP = 4
#: Idempotency keys (and the payment each named) a client remembers to spot a duplicate charge.
KEYS_REMEMBERED = 16
#: The failure of a request whose key named another payment than before (ids are logged apart).
DUPLICATE_CHARGE = "duplicate charge: the idempotency key named another payment"
#: Duplicate charges logged with their payment ids (each also fails its request and journey).
DUPLICATES_LOGGED = 20
_duplicates_logged = itertools.count()
#: How far off a service's clock may run for the client to follow it (ten years, as far as the
#: reference's --clock-offset-s goes): a ``created`` further off (in milliseconds, 0) is no clock.
SERVICE_CLOCK_SPAN_S = 10 * 366 * 86400


#: Whether a 201's ``created`` that breaks the contract was named (once per process).
_created_breach_named = False


def _name_created_breach(what: str) -> None:
    """Warn, once, that a 201's ``created`` is ``what``: no request fails on it (the payment is
    made), but without the service's clock the probes go by this machine's."""
    global _created_breach_named
    if _created_breach_named:
        return
    _created_breach_named = True
    log.warning(
        "the service breaks the contract: a 201's created is %s; the contract's created is "
        "unix seconds (an integer such as 1764064800). No request fails on it, but the edge "
        'probes choose the card expiring "this month" by this machine\'s clock, not the '
        "service's (logged once)",
        what,
    )


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard the client tries before giving up on one request (same idempotency key)."""

    resends: int = 5  # after a timeout, connection error, 5xx, 409, unreadable 201/402 (~4 s of backoff)
    rate_limit_waits: int = 5  # after a 429
    backoff_s: float = 0.25  # base of the exponential backoff (full jitter)
    backoff_cap_s: float = 4.0
    retry_after_cap_s: float = RETRY_AFTER_CAP_S

    def backoff(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0, min(self.backoff_cap_s, self.backoff_s * 2**attempt))


@dataclass(slots=True)
class PayAnswer:
    """What ``POST /pay`` finally said, after any resends with the same key.

    ``kind`` is ``paid`` (201), ``declined`` (402), ``refused`` (another 4xx, or an answer that
    breaks the contract: a 2xx or 3xx other than 201, a 201 whose echo differs from what was
    sent), ``unknown`` (no readable answer after all resends: the payment may or may not exist)
    or ``rate_limited`` (a 429 after every wait, and nothing else: nothing was stored).
    """

    kind: str
    status: int
    payment_id: str | None = None
    decline_code: str | None = None
    error_code: str | None = None
    attempts: int = 1
    duplicate_charge: bool = False
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ReportAnswer:
    """The report, or why there is none (``report`` is None then)."""

    status: int
    report: dict | None
    error_code: str | None = None
    detail: str = ""


class AttemptDeadline(TimeoutError):
    """An attempt got no complete answer within the request timeout (thrown by the attempt's
    deadline timer, which builds it only when the deadline passes)."""

    def __init__(self) -> None:
        super().__init__("no complete answer within the request timeout")


def _error_of_attempt(resp) -> BaseException | None:
    """The network error of an attempt: before the status line (``error``) or after it."""
    return getattr(resp, "error", None) or getattr(resp, "request_meta", {}).get(
        "exception"
    )


def _status_of(resp) -> int:
    """The answer's status; 0 when no complete answer came: no status line, or the deadline cut
    the body off after it (a dripping body)."""
    if isinstance(getattr(resp, "request_meta", {}).get("exception"), TimeoutError):
        return 0
    return resp.status_code or 0


class ContractViolation(Exception):
    """An answer that breaks the contract (wrong status, wrong shape, wrong echo)."""


def key_hash(key: str) -> str:
    """A short, stable hash of an idempotency key: safe for traces and logs."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


_decoder = json.JSONDecoder()
_decode_json, _scan_json = _decoder.decode, _decoder.scan_once


def _json_body(response) -> Any:
    """The parsed JSON body, or None when it is missing or not JSON (not UTF-8 included, or
    nested deeper than Python's recursion limit: a RecursionError, not a ValueError)."""
    try:
        text = (response.content or b"").decode()
        # the usual answer, one JSON value and nothing around it: the C scanner alone, without
        # decode's two whitespace matches (what decode returns, as it scans the same way);
        # StopIteration: no JSON value at 0 (empty, whitespace first), decode says what it is
        try:
            value, end = _scan_json(text, 0)
            if end == len(text):
                return value
        except StopIteration:
            pass
        return _decode_json(text)
    except (ValueError, TypeError, RecursionError):
        return None


def _no_answer(error: BaseException | None) -> str:
    """``no answer: TimeoutError``; geventhttpclient's ``RetriesExceeded`` names the error behind it."""
    if error is None:
        return "no answer: connection error"
    if type(error).__name__ == "RetriesExceeded" and error.__context__ is not None:
        error = error.__context__
    if isinstance(error, TimeoutError):  # a read's timeout or the attempt's deadline
        return "no answer: TimeoutError"
    return f"no answer: {type(error).__name__}"


def shown_code(code: Any) -> str:
    """An error or decline code as a failure message may show it: a contract-like identifier
    (``wording.quotable_code``), else a fixed phrase."""
    if code is None or code == "":
        return "no code"
    return code if quotable_code(code) else "an unknown code"


def not_paid(answer: PayAnswer) -> str:
    """Why a payment was neither paid nor declined: the refusal (the service's answer), or no
    answer after every resend with the same key, named as such (the payment may exist: the
    ledger books it unknown), or 429s to the end (nothing stored), so a failures table does not
    read one as another."""
    if answer.kind == "unknown":
        return f"no answer after every resend ({answer.detail or 'no detail'})"
    if answer.kind == "rate_limited":
        return f"still {answer.detail or '429 rate limited'} after every wait"
    return answer.detail or f"{answer.status} {answer.error_code or ''}".strip()


def unexpected_decline(answer: PayAnswer, card: Card) -> str:
    """Why a decline is not the one ``card`` brings ("" when it is): a good card declined, or
    another code than the declining test card's, breaks the contract."""
    code = answer.decline_code
    if code == card.decline_code:
        return ""
    return f"unexpected decline {shown_code(code)} ({card.brand})"


def _error_of(body: Any) -> dict:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"]
    return {}


def _rate_limited(wait_s: float | None) -> str:
    return "429 rate limited" + (
        "" if wait_s is not None else " (unreadable Retry-After)"
    )


def pay_body(
    amount: int,
    currency: str,
    card: Card,
    customer: Customer,
    metadata: dict[str, str],
    description: str | None = None,
    metadata_json: str | None = None,
) -> str:
    """The ``POST /pay`` JSON body, from the card's and customer's pre-serialized JSON.

    Same text as ``json.dumps`` of the whole payload with compact separators, without
    re-encoding the pooled card and customer on every request (the hot path of every journey).
    ``metadata_json``, when given, is ``metadata`` already encoded (``flat_json``).
    """
    body = (
        f'{{"amount":{amount:d},"currency":{string_json(currency)},"card":{card.json},'
        f'"customer":{customer.json},"metadata":{metadata_json or flat_json(metadata)}'
    )
    if description is not None:
        body += f',"description":{compact_json(description)}'
    return body + "}"


def check_paid(body: Any, amount: int, currency: str, card: Card) -> str:
    """Validate a 201 body against what was sent; returns the payment id or raises."""
    if not isinstance(body, dict):
        raise ContractViolation("201 body is not a JSON object")
    payment_id = body.get("id")
    card_echo = body.get("card")
    if not isinstance(card_echo, dict):
        card_echo = {}
    amount_echo = body.get("amount")
    if (  # the usual answer, checked in one go (every paid request comes here)
        isinstance(payment_id, str)
        and payment_id
        and body.get("status") == "succeeded"
        and type(amount_echo) is int
        and amount_echo == amount
        and body.get("currency") == currency
        and card_echo.get("brand") == card.brand
        and card_echo.get("last4") == card.number[-4:]
    ):
        return payment_id
    problems = []
    if not isinstance(payment_id, str) or not payment_id:
        problems.append("no payment id")
    for field, got, sent in (
        ("status", body.get("status"), "succeeded"),
        ("amount", amount_echo, amount),
        ("currency", body.get("currency"), currency),
        ("card.brand", card_echo.get("brand"), card.brand),
        ("card.last4", card_echo.get("last4"), card.number[-4:]),
    ):
        problems += _echo_problem(field, got, sent)
    if problems:
        raise ContractViolation("201 body: " + "; ".join(problems))
    return payment_id


def _echo_problem(field: str, got: Any, sent: Any) -> list[str]:
    """What is wrong with one echoed field, in words that never quote it: a service may echo
    anything (a full card number in ``card.last4``), and per-request values would give Locust's
    failures table one row per request."""
    if got == sent and type(got) is type(sent):
        return []
    if got is None:
        return [f"{field} missing"]
    if type(got) is not type(sent):
        return [f"{field} is {type(got).__name__}, expected {type(sent).__name__}"]
    if field == "status":
        return ["status is not 'succeeded'"]
    return [f"{field} differs from what was sent"]


_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_LONG_DIGITS = re.compile(r"\d{13}")


def shown_id(payment_id: str) -> str:
    """A payment id as a log line may quote it: as it is when it looks like one (at most 64
    letters, digits and ``_.:-``, no run of 13 digits), else its hash. The service chooses it:
    markup, terminal escapes, 100 KB or a card number glued to other digits (which the card
    scrubber, looking for 13-19 digits, let through)."""
    if _ID.fullmatch(payment_id) and not _LONG_DIGITS.search(payment_id):
        return payment_id
    return f"(an id not shown, sha256 {key_hash(payment_id)})"


def _duplicate(key: str, earlier: str | None, payment_id: str) -> bool:
    """True when ``key`` named ``earlier`` and now another payment; logs the first few."""
    if earlier is None or earlier == payment_id:
        return False
    n = next(_duplicates_logged)
    if n < DUPLICATES_LOGGED:
        log.error(
            "duplicate charge: idempotency key (sha256 %s) named payment %s, now %s",
            key_hash(key),
            shown_id(earlier),
            shown_id(payment_id),
        )
    elif n == DUPLICATES_LOGGED:
        log.error("more duplicate charges: their payment ids are not logged")
    return True


class PaymentApi:
    """The payment contract for one simulated user (wraps its ``FastHttpSession``)."""

    def __init__(
        self,
        session,
        jitter_rng: random.Random,
        token: str | None,
        policy: RetryPolicy | None = None,
        deadline_s: float | None = None,
    ):
        self.session = session
        self.jitter_rng = jitter_rng  # backoff only: never the data stream
        self.token = token
        self.policy = policy or RetryPolicy()
        self.deadline_s = deadline_s
        self._ids_by_key: dict[str, str] = {}
        # seconds the service's clock is ahead of ours, as the last 201's ``created`` showed it
        self.service_clock_ahead_s = 0.0
        # decided once per process, before any user starts (asked here, not per request)
        self._traced = tracing.enabled()
        # where attempt spans say they went (http.url, out.host): the target, never its password
        target = urllib.parse.urlsplit(getattr(session, "base_url", None) or "")
        netloc = target.netloc.rpartition("@")[2]  # without user and password
        self._url_base = (
            f"{target.scheme}://{netloc}{target.path.rstrip('/')}" if netloc else ""
        )
        self._out_host = target.hostname
        # the last metadata sent and its JSON: a journey sends the same with each of its payments
        self._metadata: dict = {}
        self._metadata_json = "{}"

    def _url(self, path: str) -> str | None:
        """The full URL of ``path`` for an attempt span (None: the target is not known)."""
        return self._url_base + path if self._url_base else None

    def _post(self, path: str, **kwargs):
        """``session.post`` (redirects not followed) within ``deadline_s`` for the whole attempt.

        The session's network timeout applies to each socket read, so a service dripping its
        answer a byte at a time would hold a request (and its journey) for ever. At the deadline
        the read stops with a ``TimeoutError``, which Locust records like any network error,
        and the half-read connection is closed, not reused.
        """
        # session.request, not session.post, which only calls it (one call less per request)
        if self.deadline_s is None:
            return self.session.request(
                "POST", path, catch_response=True, allow_redirects=False, **kwargs
            )
        # what ``with gevent.Timeout(self.deadline_s, AttemptDeadline)`` does, straight on the
        # hub's timer: its Python layers were ~6 calls per request. A new timer per attempt
        # (a libev timer restarted after a stop counts down only what was left of its delay).
        timer = gevent.get_hub().loop.timer(self.deadline_s or 0.0, priority=-1)
        timer.start(getcurrent().throw, AttemptDeadline, update=True)
        try:
            return self.session.request(
                "POST", path, catch_response=True, allow_redirects=False, **kwargs
            )
        finally:
            timer.close()

    def service_now(self) -> dt.datetime:
        """Now by the service's clock, as its last payment's ``created`` showed it (to a second or
        so; this machine's clock until one was paid). The service judges card expiry by it, so
        a probe choosing "this month" asks it, not this machine."""
        return dt.datetime.now(dt.UTC) + dt.timedelta(
            seconds=self.service_clock_ahead_s
        )

    def _read_service_clock(self, created) -> None:
        if isinstance(created, bool) or not isinstance(created, int | float):
            _name_created_breach("missing" if created is None else "not a number")
            return
        try:  # stamped in the whole second ``created`` names (or at that fraction), a moment ago
            ahead = created + 0.5 - time.time()
        except OverflowError:  # a whole number too large for a float
            ahead = math.inf
        if math.isfinite(ahead) and abs(ahead) <= SERVICE_CLOCK_SPAN_S:
            self.service_clock_ahead_s = ahead
        else:
            _name_created_breach(
                "not unix seconds (ten years or more off this machine's clock)"
            )

    # -- POST /pay -------------------------------------------------------------------------------

    def pay(
        self,
        name: str,
        *,
        card: Card,
        customer: Customer,
        amount: int,
        currency: str,
        key: str,
        metadata: dict[str, str],
        retry: int = 0,
        description: str | None = None,
    ) -> PayAnswer:
        """Send one logical payment attempt, resending with the same key until it has an answer."""
        if metadata != self._metadata:
            self._metadata, self._metadata_json = dict(metadata), flat_json(metadata)
        body = pay_body(
            amount,
            currency,
            card,
            customer,
            metadata,
            description,
            metadata_json=self._metadata_json,
        )
        resends = waits = 0
        sends = 0
        last_detail = ""
        # an attempt ended without an answer that rules a payment out (a 429 does)
        maybe_stored = in_flight = False
        try:
            while True:
                sends += 1
                label = name if sends == 1 else f"{name} (resend same key)"
                in_flight = True
                answer, transient, wait_s, status = self._send_pay(
                    label, body, key, card, amount, currency, retry, sends
                )
                in_flight = False
                if answer is not None:
                    answer.attempts = sends
                    return answer
                last_detail = transient
                if status == 429:  # nothing stored; wait as told, bounded
                    waits += 1
                    if waits > self.policy.rate_limit_waits:
                        break
                    gevent.sleep(wait_s)
                    continue
                maybe_stored = True
                if resends >= self.policy.resends:
                    break
                # our backoff, or longer when a 5xx or 409 asks for it (Retry-After)
                gevent.sleep(self._resend_wait(wait_s, resends))
                resends += 1
        except BaseException:
            # the run stopped this user mid-payment: the request in flight may have been stored
            if in_flight or maybe_stored:
                self._book_unknown(key, currency, amount)
            raise
        if not maybe_stored:  # 429s alone: a 429 stores nothing
            return PayAnswer("rate_limited", 429, attempts=sends, detail=last_detail)
        self._book_unknown(key, currency, amount)
        return PayAnswer(
            "unknown", 0, self._ids_by_key.get(key), attempts=sends, detail=last_detail
        )

    def _book_unknown(self, key: str, currency: str, amount: int) -> None:
        """A payment whose fate the client could not learn goes into the ledger as "unknown"
        (unless an earlier call with the same key already booked it as paid)."""
        if key not in self._ids_by_key:
            ledger.record(currency, amount, unknown=True)

    def _send_pay(self, label, body, key, card, amount, currency, retry, send_no):
        """One HTTP attempt. Returns (answer, transient_reason, retry_after_s, status)."""
        headers = {**JSON_HEADERS, "Idempotency-Key": key}
        # tracing off: no span to enter, tag or leave and nothing to inject (~5 calls less)
        if not self._traced:
            return self._exchange_pay(
                label, body, headers, key, card, amount, currency, None
            )
        with tracing.attempt_span(
            label, "POST", PAY_PATH, retry, self._url(PAY_PATH), self._out_host
        ) as span:
            if span is not tracing.NO_SPAN:
                span.set_tag("idempotency_key.sha256", key_hash(key))
                span.set_tag("payment.send", send_no)
            tracing.inject(headers)
            return self._exchange_pay(
                label, body, headers, key, card, amount, currency, span
            )

    def _exchange_pay(self, label, body, headers, key, card, amount, currency, span):
        """Send the attempt and judge its answer; ``span`` (None: not traced) gets its status."""
        with self._post(PAY_PATH, data=body, headers=headers, name=label) as resp:
            status = _status_of(resp)
            if span is not None:
                span.set_tag("http.status_code", status)
            answer, transient, wait_s, failure = self._judge_pay(
                resp, status, key, card, amount, currency
            )
            if failure:
                resp.failure(failure)
                if span is not None:
                    span.set_error(failure)
            else:
                resp.success()
        return answer, transient, wait_s, status

    def _judge_pay(self, resp, status, key, card, amount, currency):
        """Classify one /pay response: (answer, transient_reason, retry_after_s, failure_message).

        ``retry_after_s`` is what a 429 asks for, or a 5xx or 409 that sends ``Retry-After``
        (None: the caller backs off on its own)."""
        if status == 0:
            reason = _no_answer(_error_of_attempt(resp))
            return None, reason, None, reason
        if status == 429:
            reason, wait_s = self._rate_limit_wait(resp)
            return None, reason, wait_s, reason
        if status >= 500 or status == 409:
            code = _error_of(_json_body(resp)).get("code")
            reason = f"{status} {shown_code(code)}" if code else str(status)
            return None, reason, self._asked_wait(resp), reason
        body = _json_body(resp)
        if status == 201:
            if body is None:
                # the payment was made but the answer does not say which: ask again, same key
                reason = unreadable(resp, 201, "201 with unreadable body")
                return None, reason, None, reason
            return self._judge_paid(body, key, card, amount, currency)
        # 200, 204, a redirect (not followed): not what the contract answers
        if status < 400:
            failure = f"expected 201, got {status}"
            if status < 300:  # a success of some kind: the payment may exist
                self._book_unknown(key, currency, amount)
            return PayAnswer("refused", status, detail=failure), None, None, failure
        error = _error_of(body)
        if body is None or not error:
            reason = unreadable(resp, status, f"{status} without a JSON error body")
            if status == 402:
                # a garbled decline, like a garbled 201: the same key again may bring the
                # readable answer (and the payment id the decline was stored under)
                return None, reason, None, reason
            # any other 4xx refused the request, stored nothing, and says so again on a
            # resend (a proxy's 404 for a wrong base path, a 413): not resent
            return PayAnswer("refused", status, detail=reason), None, None, reason
        if status == 402:
            return self._judge_declined(error, key, card)
        code = error.get("code")
        failure = f"{status} {shown_code(code)}"
        return (
            PayAnswer("refused", status, error_code=code, detail=failure),
            None,
            None,
            failure,
        )

    def _judge_paid(self, body, key, card, amount, currency):
        """A 201: booked in the ledger once per key, its echo checked against what was sent."""
        payment_id = body.get("id") if isinstance(body, dict) else None
        if not isinstance(payment_id, str) or not payment_id:
            # the payment was made but the answer does not say which: ask again with the same key
            reason = "201 without a payment id"
            return None, reason, None, reason
        self._read_service_clock(body.get("created"))
        earlier = self._remember(key, payment_id)
        duplicate = _duplicate(key, earlier, payment_id)
        if earlier is None:  # a replay of a payment already booked is not a new one
            ledger.record(currency, amount)
        try:
            check_paid(body, amount, currency, card)
        except ContractViolation as exc:  # a confirmed payment, its answer a breach
            return (
                PayAnswer("refused", 201, payment_id, detail=str(exc)),
                None,
                None,
                str(exc),
            )
        answer = PayAnswer("paid", 201, payment_id, duplicate_charge=duplicate)
        return answer, None, None, DUPLICATE_CHARGE if duplicate else None

    def _judge_declined(self, error, key, card):
        """A 402 with the contract's error body: the decline the card should bring, or why not."""
        payment_id = error.get("payment_id")
        decline = error.get("decline_code")
        named = str(payment_id)
        duplicate = bool(payment_id) and _duplicate(
            key, self._remember(key, named), named
        )
        expected = card.decline_code
        failure = None
        if not isinstance(decline, str) or not decline:
            failure = f"402 without a decline_code ({card.brand})"
        elif expected is None:
            failure = (
                f"402 {shown_code(decline)} on a card that should pay ({card.brand})"
            )
        elif decline != expected:
            failure = (
                f"402 {shown_code(decline)}, expected decline {expected} ({card.brand})"
            )
        elif not isinstance(payment_id, str) or not payment_id:
            # the contract's decline names the payment it stored: without it a replay that
            # declines under another id (a second stored decline) goes unseen
            failure = "402 without a payment_id"
        if duplicate:
            failure = DUPLICATE_CHARGE
        return (
            PayAnswer(
                "declined",
                402,
                payment_id,
                decline,
                error.get("code"),
                duplicate_charge=duplicate,
            ),
            None,
            None,
            failure,
        )

    def _remember(self, key: str, payment_id: str) -> str | None:
        """Record the payment id a key produced; returns the id it named before (None: new here).

        One ``pay`` call ends at the first answer naming a payment, so a duplicate shows only
        when a caller sends a key again in a later call, which it does for a payment it just
        made. Only the last ``KEYS_REMEMBERED`` keys are kept: a longer memory would grow with
        every payment of a long run (it was 256 keys, ~60 KB per busy user).
        """
        earlier = self._ids_by_key.get(key)
        if earlier is None:
            self._ids_by_key[key] = payment_id
            if len(self._ids_by_key) > KEYS_REMEMBERED:
                self._ids_by_key.pop(next(iter(self._ids_by_key)))
        return earlier

    # -- POST /internal/generate-report ----------------------------------------------------------

    def generate_report(self, name: str, filter_: dict) -> ReportAnswer:
        """Ask for a report (by ``batch_id`` or ``from``/``to``), resending on transient failures;
        when every send failed so, the answer's detail says ``no answer after every resend``."""
        body = json.dumps(filter_)
        wait_s = 0.0
        for resend in range(self.policy.resends + 1):
            # between tries, never after the last one: giving up needs no wait
            if resend:
                gevent.sleep(wait_s)
            label = name if resend == 0 else f"{name} (resend)"
            answer, transient, wait_s = self._send_report(label, body, resend)
            if not transient:
                return answer
            # a 429's wait is its own (a backoff when unreadable); else ours, or longer if asked
            if answer.status != 429:
                wait_s = self._resend_wait(wait_s, resend)
        # every send failed in a way a resend may cure: say so, as a payment does (not_paid)
        why = answer.detail.removeprefix("report: ")
        return replace(answer, detail=f"report: no answer after every resend ({why})")

    def _send_report(self, label, body, resend):
        """One HTTP attempt. Returns (answer, transient, retry_after_s)."""
        headers = {**JSON_HEADERS, "Authorization": f"Bearer {self.token}"}
        # retry counts a customer's tries after a decline; a resend of the same report is a send
        with tracing.attempt_span(
            label, "POST", REPORT_PATH, 0, self._url(REPORT_PATH), self._out_host
        ) as span:
            span.set_tag("report.send", resend + 1)
            tracing.inject(headers)
            with self._post(
                REPORT_PATH, data=body, headers=headers, name=label
            ) as resp:
                status = _status_of(resp)
                span.set_tag("http.status_code", status)
                answer, transient, wait_s = self._judge_report(resp, status)
                if answer.report is not None:
                    resp.success()
                else:
                    resp.failure(answer.detail)
                    span.set_error(answer.detail)
        return answer, transient, wait_s

    def _judge_report(self, resp, status):
        """Classify one report response: (answer, transient, retry_after_s). ``retry_after_s``
        is a 429's wait, or what a 5xx's ``Retry-After`` asks (None: the caller backs off). A
        transient failure's answer names no error code: it is the last word only when no resend
        is left."""
        parsed = _json_body(resp) if status else None
        shape = report_shape_problem(parsed) if status == 200 else None
        if status == 200 and parsed is not None and shape is None:
            return ReportAnswer(status, parsed), False, None
        transient = (
            status == 0
            or status >= 500
            or status == 429
            or (status == 200 and parsed is None)
        )
        wait_s = None
        if status == 429:
            reason, wait_s = self._rate_limit_wait(resp)
            reason = "report: " + reason
        elif status == 0:
            reason = f"report: {_no_answer(_error_of_attempt(resp))}"
        elif shape is not None and parsed is not None:
            reason = f"report: 200 breaks the contract: {shape}"
        elif status < 400 and status != 200:  # no error, so its status is the breach
            reason = f"report: expected 200, got {status}"
        else:
            code = _error_of(parsed).get("code")
            what = "unexpected shape"
            if parsed is None:
                what = UNDECODED if undecoded(resp) else "unreadable body"
            reason = f"report: {status} {shown_code(code) if code else what}"
        if status >= 500:
            wait_s = self._asked_wait(resp)
        code = None if transient else _error_of(parsed).get("code")
        return ReportAnswer(status, None, code, reason), transient, wait_s

    def _rate_limit_wait(self, resp) -> tuple[str, float]:
        """A 429's failure reason and the seconds to wait before sending again: what
        ``Retry-After`` asks (capped), or a backoff of our own when it is unreadable."""
        headers = resp.headers or {}
        wait_s = retry_after_s(
            headers.get("Retry-After"),
            self.policy.retry_after_cap_s,
            headers.get("Date"),
        )
        reason = _rate_limited(wait_s)
        if wait_s is None:
            wait_s = self.policy.backoff(RATE_LIMIT_BACKOFF_STEP, self.jitter_rng)
        return reason, wait_s

    def _resend_wait(self, asked_s: float | None, resends: int) -> float:
        """Seconds before resending after a 5xx or 409: our backoff, or what its Retry-After
        asks when that is longer (a ``Retry-After: 0`` does not spend every resend at once)."""
        backoff = self.policy.backoff(resends, self.jitter_rng)
        return backoff if asked_s is None else max(asked_s, backoff)

    def _asked_wait(self, resp) -> float | None:
        """What a 5xx's or 409's ``Retry-After`` asks for (capped, as a 429's), or None when it
        sends none or an unreadable one: the caller backs off on its own then."""
        headers = resp.headers or {}
        value = headers.get("Retry-After")
        if not value:
            return None
        return retry_after_s(value, self.policy.retry_after_cap_s, headers.get("Date"))

    # -- raw requests for probes -----------------------------------------------------------------

    def expect(
        self,
        name: str,
        path: str,
        *,
        data: str | bytes,
        headers: dict[str, str],
        status: int,
        code: str | None = None,
    ) -> tuple[bool, str]:
        """Send a request that must be answered with ``status`` (and error ``code``): a probe.

        A correct refusal is a success for that request; anything else is a failure naming
        expected vs got. A 429 says nothing about the input: like a payment, the probe waits as
        ``Retry-After`` asks and sends again (each 429 a failed request), up to
        ``rate_limit_waits`` times. Returns (ok, message).
        """
        waits = 0
        while True:
            ok, message, wait_s = self._probe_once(
                name, path, data, headers, status, code
            )
            if wait_s is None or waits == self.policy.rate_limit_waits:
                return ok, message
            waits += 1
            gevent.sleep(wait_s)

    def _book_taken_probe(self, data: str | bytes, headers: dict[str, str]) -> None:
        """A probe's payment the service should have refused but took (a 2xx) may exist: it
        goes into the ledger as unknown, so ``--reconcile-run`` does not call it a double
        charge (the probe's failure names the acceptance). Not when its body has no positive
        whole amount (nothing to allow), nor for a key whose payment is booked already."""
        if headers.get("Idempotency-Key") in self._ids_by_key:
            return
        try:
            body = json.loads(data)
        except ValueError:
            return
        amount = body.get("amount") if isinstance(body, dict) else None
        currency = body.get("currency") if isinstance(body, dict) else None
        if type(amount) is int and amount > 0 and isinstance(currency, str):
            ledger.record(currency, amount, unknown=True)

    def _probe_once(self, name, path, data, headers, status, code):
        """One probe request: (ok, message, seconds to wait before sending again or None)."""
        with tracing.attempt_span(
            name, "POST", path, 0, self._url(path), self._out_host
        ) as span:
            headers = dict(headers)
            tracing.inject(headers)
            with self._post(path, data=data, headers=headers, name=name) as resp:
                got = _status_of(resp)
                span.set_tag("http.status_code", got)
                got_code = _error_of(_json_body(resp)).get("code") if got else None
                if got == status and (code is None or got_code == code):
                    resp.success()
                    return True, "", None
                wait_s = None
                if path == PAY_PATH and 200 <= got < 300:
                    self._book_taken_probe(data, headers)
                if got == 429:
                    answer, wait_s = self._rate_limit_wait(resp)
                elif got_code:
                    answer = f"{got} {shown_code(got_code)}"
                elif got:
                    answer = unreadable(resp, got, str(got))
                else:
                    answer = _no_answer(_error_of_attempt(resp))
                message = f"expected {status}{' ' + code if code else ''}, got {answer}"
                resp.failure(message)
                span.set_error(message)
                return False, message, wait_s
