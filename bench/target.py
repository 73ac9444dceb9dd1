"""The bench target on its own: serve the nginx + njs stand-in, or check it against the contract.

    python bench/target.py --port 8080            # serve on 127.0.0.1:8080 until Ctrl-C
    python bench/target.py --check                # contract checks against payment_contract, then exit

The stand-in (``bench/nginx/nginx.conf`` + ``payments.js``) answers ``POST /pay`` and
``POST /internal/generate-report`` the way the reference service does, at a fraction of the cost,
so a benchmark measures the generator rather than the target. ``--check`` compares its answers with
``payment_contract`` (brands, last4, declining test cards, validation codes, batch totals).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request

import harness

sys.path.insert(0, str(harness.ROOT))

from payment_contract import DECLINING_TEST_CARDS, brand_of

CARDS = [
    "4242424242424242",
    "4000056655665556",
    "5555555555554444",
    "2223003122003222",
    "378282246310005",
    "371449635398431",
    "6011111111111117",
    "6011000990139424",
    "3566002020360505",
    "4222222222222",
]


def post(
    url: str, body: object, headers: dict[str, str] | None = None
) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(
        url,
        data=data,
        method="POST",
        headers=headers
        if headers is not None
        else {"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def payment(number: str, amount: int = 1250, currency: str = "USD", **extra) -> dict:
    cvc = "1234" if brand_of(number) == "amex" else "123"
    body = {
        "amount": amount,
        "currency": currency,
        "card": {
            "number": number,
            "exp_month": 12,
            "exp_year": time.gmtime().tm_year + 2,
            "cvc": cvc,
        },
        "customer": {"id": "cus_check", "name": "Check", "email": "check@example.com"},
    }
    body.update(extra)
    return body


def check(url: str) -> list[str]:
    """Contract problems of the stand-in at ``url`` (empty when it speaks the contract)."""
    problems = []
    pay = url + "/pay"
    for number in CARDS:
        status, body = post(pay, payment(number))
        want = {"brand": brand_of(number), "last4": number[-4:]}
        if (
            status != 201
            or body.get("card") != want
            or body.get("amount") != 1250
            or body.get("status") != "succeeded"
        ):
            problems.append(f"{number}: {status} {body}")
    for number, code in DECLINING_TEST_CARDS.items():
        status, body = post(pay, payment(number))
        error = body.get("error", {})
        if (
            status != 402
            or error.get("decline_code") != code
            or not error.get("payment_id")
        ):
            problems.append(f"{number}: expected 402 {code}, got {status} {body}")
    headers = {"Content-Type": "application/json", "Idempotency-Key": "check-key"}
    first, again = (
        post(pay, payment(CARDS[0]), headers)[1],
        post(pay, payment(CARDS[0]), headers)[1],
    )
    if first.get("id") != again.get("id"):
        problems.append("a resend with the same Idempotency-Key named another payment")
    invalid = {
        "amount_too_small": payment(CARDS[0], amount=0),
        "amount_too_large": payment(CARDS[0], amount=100_000_000),
        "invalid_amount": payment(CARDS[0], amount=10.5),
        "invalid_currency": payment(CARDS[0], currency="XXX"),
        "incorrect_number": payment("4242424242424241"),
        "invalid_cvc": dict(
            payment(CARDS[0]), card=dict(payment(CARDS[0])["card"], cvc="12")
        ),
        "parameter_missing": {
            k: v for k, v in payment(CARDS[0]).items() if k != "customer"
        },
    }
    for code, body in invalid.items():
        status, answer = post(pay, body)
        if status != 422 or answer.get("error", {}).get("code") != code:
            problems.append(f"expected 422 {code}, got {status} {answer}")
    batch = f"check-{time.time_ns()}"
    sent = [
        ("4242424242424242", 100, "USD"),
        ("5555555555554444", 250, "USD"),
        ("378282246310005", 999, "JPY"),
        ("4000000000009995", 300, "USD"),
    ]
    for i, (number, amount, currency) in enumerate(sent):
        post(
            pay,
            payment(number, amount, currency, metadata={"batch_id": batch}),
            {"Content-Type": "application/json", "Idempotency-Key": f"{batch}-{i}"},
        )
    post(
        pay,
        payment(
            sent[0][0], 100, "USD", metadata={"batch_id": batch}
        ),  # a resend: counted once
        {"Content-Type": "application/json", "Idempotency-Key": f"{batch}-0"},
    )
    auth = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {harness.TOKEN}",
    }
    status, report = post(url + "/internal/generate-report", {"batch_id": batch}, auth)
    want = {"USD": {"count": 2, "amount": 350}, "JPY": {"count": 1, "amount": 999}}
    if (
        status != 200
        or report.get("totals") != want
        or report.get("payments", {}).get("declined") != 1
    ):
        problems.append(
            f"batch report: expected {want} and 1 declined, got {status} {report}"
        )
    if (
        post(
            url + "/internal/generate-report", {}, {"Content-Type": "application/json"}
        )[0]
        != 401
    ):
        problems.append("report without token: expected 401")
    return problems


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--port", type=int, default=0, help="serve on this port (default: a free one)"
    )
    p.add_argument("--cpu", default="0", help="core to pin nginx to (taskset -c)")
    p.add_argument(
        "--check", action="store_true", help="run the contract checks and exit"
    )
    p.add_argument(
        "--quick", action="store_true", help="same as --check (for the smoke test)"
    )
    args = p.parse_args()
    with (
        harness.workdir(False) as work,
        harness.nginx_target(work, args.cpu, port=args.port or None) as target,
    ):
        if args.check or args.quick:
            problems = check(target.url)
            if problems:
                sys.exit("stand-in breaks the contract:\n  " + "\n  ".join(problems))
            print("contract checks passed")
            return
        print(
            f"bench target on {target.url} (token {harness.TOKEN}); Ctrl-C stops it",
            flush=True,
        )
        try:
            target.proc.wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
