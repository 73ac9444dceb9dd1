"""One user, one layer of the generator at a time: what each layer adds to a bare request.

``BENCH_LAYER`` picks what each request goes through (every layer adds to the one before):

* ``request``  a realistic request, hand-written: a pooled customer and good card of the first
               customer persona, a fresh idempotency key, ``catch_response=True``, the JSON answer
               parsed and the request marked a success. What any realistic Locust script pays.
* ``client``   the same payment through the project's ``PaymentApi.pay``: contract validation of
               the answer, duplicate-charge and ledger bookkeeping, the resend loop, trace hooks.
* ``journey``  ``client`` inside a ``JourneyRun``: journey timing, the journey events, the
               ``journey`` row in Locust's stats.

The full mix (personas, journeys, declines and retries, operators) is the project's locustfile;
``bench/layers.py`` runs all of them against the bare user, side by side. Good cards only, so
every layer sends exactly one request per payment.

Two variants of ``request`` split its cost: ``nocatch`` (no ``catch_response``; the answer still
parsed) and ``raw`` (the request through Locust's geventhttpclient user agent with
``events.request`` fired by hand, as ``FastHttpSession.request`` would, minus that wrapper).
"""

from __future__ import annotations

import json
import os
import time

from locust import FastHttpUser, constant, events, task

import journeys.options  # (--personas, --seed)
import journeys.results  # noqa: F401  (the journey events' listeners, as in a real run)
from journeys.base import JourneyRun
from journeys.client import JSON_HEADERS, PaymentApi
from journeys.data import PaymentData, build_pools
from journeys.personas import load_personas

LAYER = os.environ.get("BENCH_LAYER", "request")
LAYERS = ("request", "client", "journey", "nocatch", "raw")
if LAYER not in LAYERS:
    raise SystemExit(f"BENCH_LAYER must be one of {', '.join(LAYERS)}, got {LAYER!r}")


@events.test_start.add_listener
def _load_persona(environment, **_kwargs) -> None:
    """Read the personas file and build the persona's data pools once, before any user starts,
    as the project's locustfile does (not in every user's on_start, inside the measured run)."""
    options = environment.parsed_options
    if options is None:
        return
    persona = next(p for p in load_personas(options.personas) if p.role == "customer")
    build_pools(persona, options.seed or 1)
    LayerUser.persona = persona


class LayerUser(FastHttpUser):
    wait_time = constant(0)
    network_timeout = 10.0
    connection_timeout = 5.0

    persona = None  # the first customer persona, set once at test start

    def on_start(self) -> None:
        persona = self.persona
        seed = self.environment.parsed_options.seed or 1
        self.data = PaymentData(persona, seed, id(self) % 100_000)
        self.api = PaymentApi(self.client, self.data.jitter_rng, None)
        self.metadata = {"persona": persona.name, "journey": "checkout"}

    @task
    def pay(self) -> None:
        if LAYER == "request":
            self.hand_written()
        elif LAYER == "nocatch":
            self.without_catch_response()
        elif LAYER == "raw":
            self.without_locust_session()
        elif LAYER == "client":
            self.through_client()
        else:
            with JourneyRun("checkout", self.persona.name) as run:
                self.through_client()
                run.finish("succeeded")

    def _payment(self) -> tuple:
        data = self.data
        currency = data.currency()
        return data.amount_minor(currency), currency, data.good_card(), data.customer()

    def _body_and_headers(self) -> tuple[str, dict[str, str]]:
        amount, currency, card, customer = self._payment()
        body = json.dumps(
            {
                "amount": amount,
                "currency": currency,
                "card": card.as_json(),
                "customer": customer.as_json(),
                "metadata": self.metadata,
            },
            separators=(",", ":"),
        )
        return body, {**JSON_HEADERS, "Idempotency-Key": self.data.idempotency_key()}

    def hand_written(self) -> None:
        body, headers = self._body_and_headers()
        with self.client.post(
            "/pay",
            data=body,
            headers=headers,
            name="checkout: pay",
            catch_response=True,
        ) as resp:
            if resp.status_code == 201 and json.loads(resp.content).get("id"):
                resp.success()
            else:
                resp.failure(f"unexpected {resp.status_code}")

    def without_catch_response(self) -> None:
        body, headers = self._body_and_headers()
        resp = self.client.post(
            "/pay", data=body, headers=headers, name="checkout: pay"
        )
        json.loads(resp.content).get("id")

    def without_locust_session(self) -> None:
        body, headers = self._body_and_headers()
        headers["Accept-Encoding"] = "gzip, deflate, br"  # as FastHttpSession adds
        url = self.host + "/pay"
        start_time, started = time.time(), time.perf_counter()
        resp = self.client.client.urlopen(
            url, method="POST", payload=body, headers=headers
        )
        content = resp.content
        self.environment.events.request.fire(
            request_type="POST",
            name="checkout: pay",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=len(content),
            response=resp,
            exception=None
            if resp.status_code == 201
            else f"unexpected {resp.status_code}",
            context={},
            start_time=start_time,
            url=url,
        )
        json.loads(content).get("id")

    def through_client(self) -> None:
        amount, currency, card, customer = self._payment()
        self.api.pay(
            "checkout: pay",
            card=card,
            customer=customer,
            amount=amount,
            currency=currency,
            key=self.data.idempotency_key(),
            metadata=self.metadata,
        )
