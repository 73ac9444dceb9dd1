"""Journey-level events: the one place journeys report what happened.

Journeys fire these; the results package (stats, UI tab, CSV, HTML, SLO) and anything else that
cares listens. Like Locust's own ``events.request``, but for a whole journey::

    from journeys.events import journey_finished
    journey_finished.add_listener(lambda result: print(result.outcome))
"""

from __future__ import annotations

from dataclasses import dataclass

from locust.event import EventHook

#: Journeys this generator runs (request names start with these).
JOURNEYS = ("checkout", "batch_report", "edge_probes", "error_probes")

#: How a customer's (or a prober's) journey ends, and an operator's.
CUSTOMER_OUTCOMES = ("succeeded", "recovered", "abandoned", "failed", "interrupted")
OPERATOR_OUTCOMES = ("reconciled", "mismatch", "failed", "interrupted")
#: Outcomes that are defects of the service (count against the SLO); the rest are expected.
UNEXPECTED_OUTCOMES = frozenset({"failed", "mismatch"})


@dataclass(frozen=True, slots=True)
class JourneyResult:
    """What one finished (or interrupted) journey did.

    ``duration_ms`` runs from the journey's first request to its outcome, think time excluded.
    ``payments`` counts logical payments (1 per checkout, ``batch_size`` per batch) and
    ``declined_payments`` those whose first attempt was declined; ``unsettled_payments`` those
    whose first attempt ended neither paid nor declined (no answer after every resend, or an
    answer that breaks the contract), which say nothing about declines. So ``declined_payments /
    (payments - unsettled_payments)`` is the observed decline rate to compare with the persona's
    ``decline_rate``.
    ``attempts`` counts every ``POST /pay`` sent to make a payment (retries and resends
    included; a probe's bad request that must be refused is not an attempt to pay).
    """

    journey: str
    persona: str
    outcome: str
    duration_ms: float
    attempts: int = 0
    payments: int = 0
    declined_payments: int = 0
    unsettled_payments: int = 0
    retried: bool = False
    duplicate_charges: int = 0
    detail: str = ""


#: fire(journey: str, persona: str) when a journey sends its first request.
journey_started = EventHook()
#: fire(result: JourneyResult) when a journey reaches its outcome.
journey_finished = EventHook()
#: fire(journey: str, persona: str, count: int) with ``--journey-rate``, when a journey starts
#: ``count`` whole intervals late: starts its user missed, which do not come later.
journey_dropped = EventHook()
