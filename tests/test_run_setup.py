"""Start-up behaviour of real Locust runs: personas file errors, the persona mix, seeds, token."""

from __future__ import annotations

import json
import re

from tests.conftest import run_locust, write_personas

MIX = (
    "alpha_shopper,customer,6,visa,USD,5,50,0,1,,en_US,0.5,1",
    "beta_shopper,customer,3,mastercard,EUR,5,50,0,1,,de_DE,0.5,1",
    "gamma_shopper,customer,1,amex,GBP,5,50,0,1,,en_GB,0.5,1",
)


def test_bad_personas_file_exits_2_before_any_request(tmp_path, service):
    personas = write_personas(
        tmp_path,
        "good_one,customer,1,visa,USD,5,50,0,1,,en_US,0,1",
        "bad_one,customer,-1,visa,USDD,5,50,0,1,,en_US,0,1",
        name="broken.csv",
    )
    run = run_locust(tmp_path, service.url, personas=personas, run_time="3s")
    assert run.returncode == 2, run.output[-2000:]
    assert "broken.csv" in run.output
    assert (
        re.search(r"line 3\b", run.output)
        and "weight" in run.output
        and "currencies" in run.output
    )
    assert "Traceback" not in run.output
    assert service.query("SELECT count(*) FROM payments") == [(0,)]


def test_user_counts_follow_the_persona_weights(tmp_path, service):
    personas = write_personas(tmp_path, *MIX)
    run = run_locust(tmp_path, service.url, personas=personas, users=10, run_time="3s")
    spawned = re.search(r"All users spawned: (\{.*?\})", run.output)
    assert spawned, run.output[-3000:]
    assert json.loads(spawned.group(1)) == {
        "AlphaShopper": 6,
        "BetaShopper": 3,
        "GammaShopper": 1,
    }
    # the data pools of every persona are built before the first user starts, not mid-test
    ready = run.output.find("data pools ready for 3 personas (3 locales)")
    assert 0 <= ready < run.output.index("Ramping to"), run.output[-3000:]


def test_persona_class_can_be_picked_by_name(tmp_path, service):
    personas = write_personas(tmp_path, *MIX)
    run = run_locust(
        tmp_path, service.url, "BetaShopper", personas=personas, users=2, run_time="3s"
    )
    currencies = {c for (c,) in service.query("SELECT DISTINCT currency FROM payments")}
    assert currencies == {"EUR"}, run.output[-2000:]


def _first_payments(service, count=6):
    return service.query(
        "SELECT amount, currency, brand, last4, json_extract(metadata, '$.persona') FROM payments "
        "ORDER BY created_at, rowid LIMIT ?",
        (count,),
    )


def test_seed_repeats_the_data(tmp_path, start_service):
    personas = write_personas(
        tmp_path,
        "solo,customer,1,visa|mastercard|amex,USD|EUR|JPY,5,900,0.3,1,,fr_FR,0,0",
    )
    runs = []
    for seed in ("21", "21", "22"):
        service = start_service()
        run_locust(
            tmp_path,
            service.url,
            "--seed",
            seed,
            personas=personas,
            users=1,
            run_time="2s",
        )
        runs.append(_first_payments(service))
        service.stop()
    assert len(runs[0]) == 6
    assert runs[0] == runs[1], "the same seed must repeat the same payments"
    assert runs[0] != runs[2], "another seed must give other payments"


def test_missing_token_with_operators_stops_before_traffic(tmp_path, service):
    personas = write_personas(tmp_path, "ops,operator,1,visa,USD,1,50,0,0,3,en_US,0,1")
    run = run_locust(
        tmp_path, service.url, personas=personas, env={"PAYMENT_INTERNAL_TOKEN": ""}
    )
    assert run.returncode == 2
    assert "PAYMENT_INTERNAL_TOKEN is not set" in run.output and "ops" in run.output
    assert service.query("SELECT count(*) FROM payments") == [(0,)]


def test_unreachable_host_stops_at_once(tmp_path):
    from tests.conftest import free_port

    run = run_locust(
        tmp_path, f"http://127.0.0.1:{free_port()}", run_time="30s", timeout=25
    )
    assert run.returncode == 2
    assert "cannot be reached" in run.output and "--wait-for-host" in run.output
