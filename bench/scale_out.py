"""Scale-out: master + 1 worker vs master + 2 workers, same users, against the nginx stand-in.

    python bench/scale_out.py --duration 20 --users 64 --rounds 2

HTTP requests/s of the journey mix (the project's customer and operator personas, no think time;
``--configs bare,mix`` adds the bare FastHttpUser): ``Requests/s`` of the HTTP rows of the master's
``--csv`` stats file. Nothing is pinned: on a 2-core machine
the target, the master and the workers share both cores, so the ideal ratio is below 2.0 by the
target's share (its busy column).
"""

from __future__ import annotations

import harness


def main() -> None:
    p = harness.parser(__doc__.split("\n\n")[0], duration=20, users=64)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--configs", default="mix", help="bare and/or mix")
    p.add_argument(
        "--target-cpu", default=None, help="pin the target (default: not pinned)"
    )
    args = p.parse_args()
    if args.quick:
        args.duration, args.users, args.rounds = 1, 4, 1
    configs = [c for c in args.configs.split(",") if c]
    harness.header("Scale-out: master + 1 vs 2 workers")
    with (
        harness.workdir(args.keep) as work,
        harness.nginx_target(work, args.target_cpu) as target,
    ):
        personas = (
            harness.bench_personas(work / "personas-bench.csv")
            if "mix" in configs
            else None
        )
        rps: dict[tuple[str, int], list[float]] = {}
        rows = []
        for rnd in range(1, args.rounds + 1):
            for config in configs:
                for workers in (1, 2):
                    run = harness.run_locust(
                        work,
                        f"{config}-{workers}w-{rnd}",
                        [harness.BARE] if config == "bare" else [harness.LOCUSTFILE],
                        target.url,
                        users=args.users,
                        run_time=harness.run_time(args, config),
                        personas=None if config == "bare" else personas,
                        cpus=None,
                        workers=workers,
                        target=target,
                    )
                    value = run.http_rps
                    rps.setdefault((config, workers), []).append(value)
                    rows.append(
                        [
                            rnd,
                            config,
                            workers,
                            run.http_requests,
                            run.http_failures,
                            value,
                            f"{run.target_busy:.0%}",
                        ]
                    )
                    print(
                        f"  round {rnd} {config} {workers} worker(s): {value:,.0f} req/s",
                        flush=True,
                    )
        print()
        print(
            harness.table(
                [
                    "round",
                    "config",
                    "workers",
                    "HTTP requests",
                    "failures",
                    "req/s",
                    "target busy",
                ],
                rows,
            )
        )
        summary = []
        for config in configs:
            one, two = (
                harness.median(rps[(config, 1)]),
                harness.median(rps[(config, 2)]),
            )
            summary.append([config, one, two, f"{two / one:.2f}" if one else ""])
        print()
        print(
            harness.table(
                ["config", "1 worker req/s", "2 workers req/s", "2 / 1"], summary
            )
        )


if __name__ == "__main__":
    main()
