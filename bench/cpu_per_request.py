"""Generator CPU per request at a fixed rate, against the reference service: bare vs journey mix.

    python bench/cpu_per_request.py --duration 30 --users 20 --rate 100

A second view of generator cost that does not need a saturated generator: both configs send about
``--rate`` requests/s to ``python -m payment_service`` (pinned to core 0; generator to core 1).
The bare FastHttpUser paces itself with ``constant_throughput(rate / users)``; the journey users
(the project's customer and operator personas) think ``users / rate`` seconds per request their
journey sends (customers 1 + decline rate, operators batch size + 1) before each journey, so their
rate is close but not identical: the table prints both. CPU = the Locust process's
``os.times()`` user + system from spawn complete to test stop, divided by the HTTP requests sent
in that window. Rounds are interleaved (bare, mix, bare, mix, ...).
"""

from __future__ import annotations

import harness


def main() -> None:
    p = harness.parser(__doc__.split("\n\n")[0], duration=30, users=20)
    p.add_argument(
        "--rate", type=float, default=100, help="requests/s for the whole run"
    )
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--generator-cpu", default="1")
    p.add_argument("--target-cpu", default="0")
    p.add_argument(
        "--target",
        choices=("service", "nginx"),
        default="service",
        help="the reference service (default) or the nginx stand-in",
    )
    args = p.parse_args()
    if args.quick:
        args.duration, args.users, args.rate, args.rounds = 1, 4, 20, 1
    harness.header("Generator CPU per request at a fixed rate")
    start = (
        harness.reference_service if args.target == "service" else harness.nginx_target
    )
    with harness.workdir(args.keep) as work, start(work, args.target_cpu) as target:
        personas = harness.bench_personas(
            work / "personas-paced.csv", pace=args.users / args.rate
        )
        results: dict[str, list[float]] = {"bare": [], "mix": []}
        rows = []
        for rnd in range(1, args.rounds + 1):
            for config, values in results.items():
                run = harness.run_locust(
                    work,
                    f"{config}-{rnd}",
                    [harness.BARE] if config == "bare" else [harness.LOCUSTFILE],
                    target.url,
                    users=args.users,
                    run_time=args.duration,
                    personas=None if config == "bare" else personas,
                    cpus=args.generator_cpu,
                    env={"BENCH_RATE": f"{args.rate / args.users:g}"}
                    if config == "bare"
                    else {},
                    target=target,
                )
                s = run.steady
                per_request_ms = (
                    s["cpu"] / s["requests"] * 1000 if s.get("requests") else 0.0
                )
                values.append(per_request_ms)
                rows.append(
                    [
                        rnd,
                        config,
                        s.get("requests", 0),
                        run.http_failures,
                        s["requests"] / s["wall"] if s.get("wall") else 0.0,
                        s.get("cpu", 0.0),
                        f"{per_request_ms:.3f}",
                        f"{run.target_busy:.0%}",
                    ]
                )
                print(
                    f"  round {rnd} {config:5s} {rows[-1][4]:7.1f} req/s  {per_request_ms:.3f} ms CPU/request",
                    flush=True,
                )
        print()
        print(
            harness.table(
                [
                    "round",
                    "config",
                    "HTTP requests",
                    "failures",
                    "req/s",
                    "generator CPU s",
                    "CPU ms/request",
                    "target core busy",
                ],
                rows,
            )
        )
        bare, mix = harness.median(results["bare"]), harness.median(results["mix"])
        print()
        print(
            harness.table(
                [
                    "config",
                    "median CPU ms/request",
                    "x bare",
                    "requests per core-second",
                ],
                [
                    ["bare", f"{bare:.3f}", "1.00", 1000 / bare if bare else 0.0],
                    [
                        "mix",
                        f"{mix:.3f}",
                        f"{mix / bare:.2f}" if bare else "",
                        1000 / mix if mix else 0.0,
                    ],
                ],
            )
        )


if __name__ == "__main__":
    main()
