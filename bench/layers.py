"""Where the mix's cost per request comes from: each layer of the generator against a bare user.

    python bench/layers.py --duration 15 --users 32 --rounds 3

One run measures, interleaved round by round, on the same pinned core and against the same nginx
stand-in as ``bench/throughput.py``:

``bare``     a bare FastHttpUser posting one fixed body (``bench/locustfiles/bare.py``);
``request``  a realistic hand-written request: pooled customer and card, fresh key, answer parsed;
``client``   the same payment through the project's API client (contract validation, ledger);
``journey``  the client inside a journey run (timing, journey events, the ``journey`` stats row);
``mix``      the project's locustfile with its customers and operators, no think time.

Two more layers, not run unless named in ``--layers``, split the hand-written request's cost:
``nocatch`` is ``request`` without ``catch_response`` (the answer still parsed); ``raw`` is
``request`` sent straight through Locust's geventhttpclient user agent with ``events.request``
fired by hand, that is, without Locust's ``FastHttpSession.request`` around it.

(``bench/locustfiles/layers.py`` has every layer between ``bare`` and ``mix``.) With the generator's core saturated,
1 / (requests/s) is its CPU time per request, so each row also prints what that layer adds per
request in microseconds. This is the profile ``throughput.py``'s mix target is judged by.
"""

from __future__ import annotations

import harness

LAYERS = ("bare", "request", "client", "journey", "mix")
OPTIONAL = ("nocatch", "raw")
LAYER_FILE = harness.BENCH / "locustfiles" / "layers.py"


def main() -> None:
    p = harness.parser(__doc__.split("\n\n")[0], duration=15, users=32)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    p.add_argument(
        "--generator-cpu", default="1", help="core(s) for the generator (taskset -c)"
    )
    p.add_argument("--target-cpu", default="0", help="core(s) for nginx")
    p.add_argument(
        "--layers",
        default=",".join(LAYERS),
        help=f"layers in this order (bare first); also: {', '.join(OPTIONAL)}",
    )
    args = p.parse_args()
    if args.quick:
        args.duration, args.users, args.rounds = 1, 4, 1
    layers = [name for name in args.layers.split(",") if name]
    unknown = sorted(set(layers) - set(LAYERS) - set(OPTIONAL))
    if unknown or layers[:1] != ["bare"]:
        p.error(
            f"--layers: start with bare, then any of {', '.join(LAYERS[1:] + OPTIONAL)}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else "")
        )
    harness.header("Cost per request, layer by layer")
    runs: dict[str, list[harness.LocustRun]] = {layer: [] for layer in layers}
    with (
        harness.workdir(args.keep) as work,
        harness.nginx_target(work, args.target_cpu) as target,
    ):
        personas = harness.bench_personas(work / "personas-bench.csv")
        for rnd in range(1, args.rounds + 1):
            for layer in layers:
                run = harness.run_locust(
                    work,
                    f"{layer}-{rnd}",
                    [_locustfile(layer)],
                    target.url,
                    users=args.users,
                    run_time=harness.run_time(args, layer),
                    personas=None if layer == "bare" else personas,
                    cpus=args.generator_cpu,
                    env={"BENCH_LAYER": layer},
                    target=target,
                )
                if run.http_failures:
                    raise SystemExit(
                        f"{layer}: {run.http_failures} failed requests\n{run.tail()}"
                    )
                runs[layer].append(run)
                print(
                    f"  round {rnd} {layer:8s} {run.rps:9,.0f} req/s  "
                    f"target core {run.target_busy:.0%}",
                    flush=True,
                )
    print()
    print(summary(runs))


def _locustfile(layer: str):
    if layer == "bare":
        return harness.BARE
    return harness.LOCUSTFILE if layer == "mix" else LAYER_FILE


def summary(runs: dict[str, list[harness.LocustRun]]) -> str:
    """Median req/s per layer, its ratio to bare, and the µs per request each layer adds."""
    rows = []
    base = harness.median([r.rps for r in runs["bare"]])
    previous_us = None
    for layer, rs in runs.items():
        rps = harness.median([r.rps for r in rs])
        us = 1e6 / rps if rps else 0.0
        rows.append(
            [
                layer,
                rps,
                f"{rps / base:.2f}" if base else "",
                " ".join(
                    f"{r.rps / b.rps:.2f}" for r, b in zip(rs, runs["bare"]) if b.rps
                ),
                f"{us:.0f}",
                f"{us - previous_us:+.0f}" if previous_us is not None else "",
                f"{harness.median([r.target_busy for r in rs]):.0%}",
            ]
        )
        previous_us = us
    return harness.table(
        [
            "layer",
            "median req/s",
            "ratio to bare",
            "per-round ratios",
            "µs/request",
            "added by layer",
            "target core busy",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
