"""Memory per simulated user: RSS of one worker at 1, 1,000 and 5,000 idle users, bare vs journeys.

    python bench/memory.py --steps 1000,5000

Master + 1 worker against the nginx stand-in. Users think for an hour (``BENCH_WAIT`` for the bare
FastHttpUser; ``wait_min = wait_max = 3600`` for every persona of the project's personas file), so
they are spawned and then idle. A load shape (``bench/locustfiles/steps.py``) holds 1 user, then
each step; the probe reads the worker's RSS a few seconds after each spawn completes.
KB/user at N = (RSS(N) - RSS(1)) / (N - 1). Target: <= 64 KB per journey user.
"""

from __future__ import annotations

import harness

TARGET_KB = 64.0
THINK_S = 3600


def main() -> None:
    p = harness.parser(__doc__.split("\n\n")[0], duration=0, users=0)
    p.add_argument(
        "--steps",
        default="1000,5000",
        help="user counts to measure (after a 1-user baseline)",
    )
    p.add_argument(
        "--spawn-rate", type=float, default=500, help="users spawned per second"
    )
    p.add_argument(
        "--settle",
        type=float,
        default=4,
        help="seconds after spawn complete before reading RSS",
    )
    p.add_argument("--configs", default="bare,journeys")
    args = p.parse_args()
    steps = [int(s) for s in args.steps.split(",") if s]
    # seconds a step may take beyond its spawn time before RSS is read
    spawn_margin = 5.0
    # seconds the 1-user baseline is held before its RSS settles and is read
    base_hold = 3.0
    if args.quick:
        steps, args.settle, spawn_margin, base_hold = [25], 0.5, 1.5, 1.5
    harness.header("Memory per user (one worker)")
    with harness.workdir(args.keep) as work, harness.nginx_target(work, None) as target:
        configs = [c for c in args.configs.split(",") if c]
        personas = None
        if "journeys" in configs:
            personas = harness.bench_personas(
                work / "personas-idle.csv",
                wait=(THINK_S, THINK_S),
                roles=("customer", "operator", "prober"),
            )
        rows = []
        for config in configs:
            plateau = [(1, base_hold + args.settle)] + [
                (n, (n - prev) / args.spawn_rate * 1.5 + args.settle + spawn_margin)
                for prev, n in zip([1, *steps], steps, strict=False)
            ]
            env = {
                "BENCH_STEPS": ",".join(f"{n}:{s:.1f}" for n, s in plateau),
                "BENCH_SPAWN_RATE": str(args.spawn_rate),
                "BENCH_RSS_SETTLE": str(args.settle),
            }
            if config == "bare":
                env["BENCH_WAIT"] = str(THINK_S)
            run = harness.run_locust(
                work,
                f"memory-{config}",
                [
                    harness.BARE if config == "bare" else harness.LOCUSTFILE,
                    harness.STEPS,
                ],
                target.url,
                users=1,
                run_time=sum(s for _, s in plateau),
                personas=None if config == "bare" else personas,
                cpus=None,
                env=env,
                workers=1,
            )
            samples = {s["users"]: s for s in run.probe.get("rss", [])}
            if 1 not in samples:
                raise SystemExit(f"{config}: no RSS sample at 1 user\n{run.tail()}")
            base = samples[1]["rss_kb"]
            rows.append([config, 1, samples[1]["running"], base / 1024, "", ""])
            for n in steps:
                s = samples.get(n)
                if s is None:
                    rows.append([config, n, "no sample", "", "", ""])
                    continue
                per_user = (s["rss_kb"] - base) / (n - 1)
                check = (
                    harness.verdict(per_user, TARGET_KB, higher_is_better=False)
                    if config != "bare"
                    else ""
                )
                rows.append(
                    [config, n, s["running"], s["rss_kb"] / 1024, per_user, check]
                )
        print(
            harness.table(
                [
                    "config",
                    "users",
                    "running",
                    "worker RSS MB",
                    "KB/user",
                    f"<= {TARGET_KB:g} KB",
                ],
                rows,
            )
        )


if __name__ == "__main__":
    main()
