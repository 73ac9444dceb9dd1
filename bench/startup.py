"""Start-up: seconds from launching ``locust`` to its first request, default vs 1,000 personas.

    python bench/startup.py --rounds 3

Headless standalone Locust on one core against the nginx stand-in, once with the project's personas
and once with a generated 1,000-row personas file (the project's rows repeated under new names,
weights and amounts varied, customers, operators and probers alike). Think time is set to 0 in
both so the first journey sends at once: this measures start-up, not think time. ``ready`` is
Locust's test_start event (imports, personas, user classes, argument parsing, target check done);
``first request`` is the first request event (one response later). Rounds are interleaved.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time

import harness


def many_personas(path, rows: int, seed: int = 7):
    """``rows`` personas derived from the project's: unique names, varied weight and amounts."""
    base = harness.read_personas()
    rng = random.Random(seed)
    out = []
    for i in range(rows):
        row = dict(base[i % len(base)])
        row["persona"] = f"{row['persona']}_{i:04d}"
        row["weight"] = f"{rng.uniform(0.1, 5):.2f}"
        row["wait_min"] = row["wait_max"] = "0"
        out.append(row)
    return harness.write_personas(path, out)


def run_once(
    work,
    name: str,
    personas,
    target_url: str,
    users: int,
    cpus: str,
    run_time: float = 3,
) -> dict:
    run_dir = work / name
    run_dir.mkdir()
    cmd = harness.locust_base(
        [harness.LOCUSTFILE, harness.PROBE],
        target_url,
        users,
        users,
        run_time,
        None,
        personas,
    )
    env = harness.clean_env(BENCH_PROBE_OUT=str(run_dir / "probe"))
    with open(run_dir / "locust.log", "wb") as log:
        t0 = time.time()
        proc = subprocess.run(
            harness.pinned(cpus, cmd),
            cwd=harness.ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=600,
            check=False,
        )
    probes = list(run_dir.glob("probe.*.json"))
    if not probes:
        sys.exit(
            f"{name}: Locust exited with {proc.returncode} and no probe output:\n"
            + (run_dir / "locust.log").read_text(errors="replace")[-3000:]
        )
    record = json.loads(probes[0].read_text())
    return {
        "ready": record["start"]["wall"] - t0,
        "first": record["first_request"] - t0
        if "first_request" in record
        else float("nan"),
    }


def main() -> None:
    p = harness.parser(__doc__.split("\n\n")[0], duration=0, users=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--rows", type=int, default=1000, help="rows of the generated personas file"
    )
    p.add_argument("--generator-cpu", default="1")
    args = p.parse_args()
    # seconds each run lasts after start-up (only the time to the first request is measured)
    run_time = 3
    if args.quick:
        args.rounds, args.rows, args.users, run_time = 1, 50, 2, 1
    harness.header("Start-up: launch to first request")
    with harness.workdir(args.keep) as work, harness.nginx_target(work, "0") as target:
        files = {
            "default personas": harness.bench_personas(
                work / "personas-default.csv", roles=("customer", "operator", "prober")
            ),
            f"{args.rows} personas": many_personas(
                work / "personas-many.csv", args.rows
            ),
        }
        results: dict[str, list[dict]] = {k: [] for k in files}
        for rnd in range(1, args.rounds + 1):
            for i, (label, path) in enumerate(files.items()):
                r = run_once(
                    work,
                    f"start-{i}-{rnd}",
                    path,
                    target.url,
                    args.users,
                    args.generator_cpu,
                    run_time,
                )
                results[label].append(r)
                print(
                    f"  round {rnd} {label}: ready {r['ready']:.2f} s, first request {r['first']:.2f} s",
                    flush=True,
                )
        rows = []
        for label, rs in results.items():
            rows.append(
                [
                    label,
                    f"{harness.median([r['ready'] for r in rs]):.2f}",
                    f"{harness.median([r['first'] for r in rs]):.2f}",
                    " ".join(f"{r['first']:.2f}" for r in rs),
                ]
            )
        print()
        print(
            harness.table(
                [
                    "personas",
                    "median s to ready",
                    "median s to first request",
                    "all rounds",
                ],
                rows,
            )
        )


if __name__ == "__main__":
    main()
