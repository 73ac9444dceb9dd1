"""Customer checkout: pay, and after a decline retry the way real checkouts do.

    think → pay → paid?  ─────────────────────────────▶ succeeded
                  declined? → by decline code:
                     insufficient_funds, generic_decline → another card, new key → …
                     expired_card, incorrect_cvc         → corrected details, new key → …
                     processing_error                    → same card, new key, after a backoff;
                                                           declined again → another card, new key → …
                     lost_card, stolen_card              → give up at once ▶ abandoned
                  (at most max_retries retries, then ▶ abandoned; paid after a decline ▶ recovered)

Timeouts, connection errors, 5xx and 429 are handled below the journey by the API client, which
resends with the *same* idempotency key (so the service can never charge twice). Those resends
show in the attempts per payment, not in the funnel: a checkout paid after a resend "succeeded",
and "retried" counts checkouts that tried again after a decline. Still no answer after every
resend ▶ failed, "no answer after every resend (...)": the payment may exist (ledger: unknown);
429s to the end ▶ failed, "still 429 rate limited after every wait": nothing was stored.
"""

from __future__ import annotations

import gevent
from locust import tag, task

from journeys.base import Journey, JourneyRun
from journeys.client import DUPLICATE_CHARGE, not_paid, unexpected_decline
from payment_contract import TRANSIENT_DECLINE_CODES

ANOTHER_CARD = frozenset({"insufficient_funds", "generic_decline"})
CORRECT_DETAILS = frozenset({"expired_card", "incorrect_cvc"})
#: The contract's transient declines: the same card may pay later.
SAME_CARD_LATER = TRANSIENT_DECLINE_CODES
NEVER_RETRY = frozenset({"lost_card", "stolen_card"})


@tag("checkout", "customer")
class CheckoutJourney(Journey):
    """A customer checks out once per pass; see the module docstring for the story."""

    journey_name = "checkout"

    @task
    def checkout(self) -> None:
        self.think()  # browsing: not part of the journey's duration
        with self.start(self.journey_name) as run:
            run.payments = 1
            run.finish(*self.pay_until_done(run))
        self.done()

    def pay_until_done(self, run: JourneyRun) -> tuple[str, str]:
        data = self.data
        customer, currency = data.customer(), data.currency()
        amount = data.amount_minor(currency)
        card = data.first_card()
        metadata = self.metadata(run)
        retries = 0
        # a processing_error gets one more try with the same card
        same_card_again = False
        while True:
            answer = self.api.pay(
                "checkout: pay" if retries == 0 else "checkout: retry pay",
                card=card,
                customer=customer,
                amount=amount,
                currency=currency,
                key=data.idempotency_key(),
                metadata=metadata,
                retry=retries,
            )
            run.attempts += answer.attempts
            if answer.duplicate_charge:
                run.duplicate_charges += 1
                return "failed", DUPLICATE_CHARGE
            if answer.kind == "paid":
                return ("succeeded", "") if retries == 0 else ("recovered", "")
            if answer.kind != "declined":
                # neither paid nor declined: the first attempt says nothing about declines
                if retries == 0:
                    run.unsettled_payments = 1
                return "failed", not_paid(answer)
            if retries == 0:
                run.declined_payments = 1
            if surprise := unexpected_decline(answer, card):
                return "failed", surprise
            code = answer.decline_code
            if code in NEVER_RETRY:
                return "abandoned", f"{code}: not retried"
            if retries >= self.persona.max_retries:
                return "abandoned", f"{code}: gave up after {retries} retries"
            retries += 1
            run.retried = True
            if code in SAME_CARD_LATER and not same_card_again:
                # transient, as far as the customer knows: wait, try again
                same_card_again = True
                gevent.sleep(self.api.policy.backoff(retries, self.data.rng))
            else:
                card = self.card_for_retry(card, code)

    def card_for_retry(self, card, code: str):
        """The card a real customer tries next after ``code``."""
        if code in CORRECT_DETAILS:
            return self.data.corrected_card(card)
        # ANOTHER_CARD, a processing_error that came back, and codes this contract doesn't name
        return self.data.good_card(exclude=card)
