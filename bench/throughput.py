"""Throughput per generator core: bare FastHttpUser vs our journey mix vs the mix with tracing.

    python bench/throughput.py --duration 20 --users 32 --rounds 3

One run of this script measures, side by side and interleaved (a, b, c, a, b, c, ...):

(a) ``bare``   a bare FastHttpUser posting one fixed valid body (``bench/locustfiles/bare.py``);
(b) ``mix``    our locustfile with the project's customer and operator personas, no think time;
(c) ``traced`` (b) with tracing on, to a local ``ddapm-test-agent``.

The generator is pinned to one core (``taskset -c 1``); the target, the nginx + njs stand-in of
``bench/nginx/`` (one worker), and the trace agent are pinned to the other (``taskset -c 0``).
Same users, same duration; HTTP requests/s = the ``Requests/s`` of the HTTP rows of Locust's
``--csv`` stats file (never the ``journey`` rows), cross-checked by the probe's own count from spawn
complete to test stop, and requests per generator CPU-second (robust when the core is shared). The target's busy share of its core is printed too: it
must stay well below 100% or the target, not the generator, was measured.
"""

from __future__ import annotations

import harness

CONFIGS = ("bare", "mix", "traced")
TARGETS = {"mix": 0.80, "traced": 0.55}


def main() -> None:
    p = harness.parser(__doc__.split("\n\n")[0], duration=20, users=32)
    p.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds of the three configs"
    )
    p.add_argument(
        "--configs", default=",".join(CONFIGS), help="subset of bare,mix,traced"
    )
    p.add_argument(
        "--generator-cpu", default="1", help="core(s) for the generator (taskset -c)"
    )
    p.add_argument(
        "--trace-sample-rate",
        default="1",
        help="traced config: share of journeys traced (the target is for 1, every journey)",
    )
    p.add_argument(
        "--target-cpu", default="0", help="core(s) for nginx and the trace agent"
    )
    p.add_argument(
        "--trace-inject-styles",
        default="",
        help="traced config: trace header styles to send (DD_TRACE_PROPAGATION_STYLE_INJECT), "
        "e.g. tracecontext; default the generator's own, datadog,tracecontext",
    )
    args = p.parse_args()
    if args.quick:
        args.duration, args.users, args.rounds = 1, 4, 1
    configs = [c for c in args.configs.split(",") if c]
    harness.header("Throughput per generator core")
    with (
        harness.workdir(args.keep) as work,
        harness.nginx_target(work, args.target_cpu) as target,
        harness.trace_agent(work, args.target_cpu) as agent,
    ):
        mixes = [c for c in configs if c != "bare"]
        personas = (
            harness.bench_personas(work / "personas-bench.csv") if mixes else None
        )
        runs: dict[str, list[harness.LocustRun]] = {c: [] for c in configs}
        rows = []
        for rnd in range(1, args.rounds + 1):
            for config in configs:
                traces_before = (
                    harness.trace_count(agent.url) if config == "traced" else 0
                )
                agent_cpu = harness.CpuMeter(agent.pids)
                agent_cpu.start()
                run = harness.run_locust(
                    work,
                    f"{config}-{rnd}",
                    [harness.BARE] if config == "bare" else [harness.LOCUSTFILE],
                    target.url,
                    users=args.users,
                    run_time=harness.run_time(args, config),
                    personas=None if config == "bare" else personas,
                    cpus=args.generator_cpu,
                    env=harness.traced_env(
                        agent.url, args.trace_sample_rate, args.trace_inject_styles
                    )
                    if config == "traced"
                    else {},
                    target=target,
                )
                agent_busy = agent_cpu.stop()
                traces = (
                    harness.trace_count(agent.url) - traces_before
                    if config == "traced"
                    else ""
                )
                runs[config].append(run)
                cpu = run.steady
                busy = cpu["cpu"] / cpu["wall"] if cpu else 0.0
                rows.append(
                    [
                        rnd,
                        config,
                        run.http_requests,
                        run.http_failures,
                        run.wall,
                        run.rps,
                        run.probe_rps,
                        per_cpu_second(run),
                        f"{busy:.0%}",
                        f"{run.target_busy:.0%}",
                        f"{agent_busy:.0%}",
                        traces,
                    ]
                )
                print(
                    f"  round {rnd} {config:7s} {run.rps:9,.0f} req/s  generator core {busy:.0%}  "
                    f"target core {run.target_busy:.0%}",
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
                    "wall s",
                    "req/s",
                    "req/s (probe)",
                    "req/CPU-s",
                    "generator core busy",
                    "target core busy",
                    "agent core busy",
                    "traces",
                ],
                rows,
            )
        )
        print()
        print(summary(runs))


def per_cpu_second(run: harness.LocustRun) -> float:
    """HTTP requests per CPU-second of the generator (spawn complete to stop): robust to a shared core."""
    s = run.steady
    return s["requests"] / s["cpu"] if s and s["cpu"] else 0.0


def summary(runs: dict[str, list[harness.LocustRun]]) -> str:
    base = harness.median([r.rps for r in runs.get("bare", [])])
    base_cpu = harness.median([per_cpu_second(r) for r in runs.get("bare", [])])
    rows = []
    for config, rs in runs.items():
        rps = harness.median([r.rps for r in rs])
        ratio = rps / base if base else 0.0
        per_cpu = harness.median([per_cpu_second(r) for r in rs])
        target = TARGETS.get(config)
        per_round = " ".join(
            f"{r.rps / b.rps:.2f}"
            for r, b in zip(rs, runs.get("bare", []), strict=False)
            if b.rps
        )
        rows.append(
            [
                config,
                rps,
                f"{ratio:.2f}",
                per_round,
                f">= {target:.2f}" if target else "",
                harness.verdict(ratio, target) if target else "",
                per_cpu,
                f"{per_cpu / base_cpu:.2f}" if base_cpu else "",
                f"{harness.median([r.target_busy for r in rs]):.0%}",
            ]
        )
    return harness.table(
        [
            "config",
            "median req/s",
            "ratio to bare",
            "per-round ratios",
            "target",
            "verdict",
            "req/CPU-s",
            "ratio (CPU)",
            "target core busy",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
