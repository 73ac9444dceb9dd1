"""Python function calls per HTTP request: what the mix (and tracing) call that a bare user does not.

    python bench/calls.py --duration 8 --users 32
    python bench/calls.py --configs bare,traced --top 60

Deterministic where throughput is noisy: runs each config (``bare``, ``mix``, ``traced``, as in
``bench/throughput.py``) once under cProfile, from spawn complete to test stop
(``bench/locustfiles/calls.py``), divides every function's call count by the HTTP requests sent
in that window, and prints the total calls per request of each config and the functions whose
calls per request a config adds over ``bare`` (ours, Locust's, geventhttpclient's, the standard
library's, ddtrace's). cProfile slows everything several times, so its times are only shares;
the counts are exact.
"""

from __future__ import annotations

import json
import pstats
import re
from pathlib import Path

import harness

CALLS = harness.BENCH / "locustfiles" / "calls.py"
ADDRESS = re.compile(r" at 0x[0-9a-f]+")


def short(path: str) -> str:
    for marker in ("site-packages/", str(harness.ROOT) + "/", "lib/python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def per_request(prof: Path, requests: int) -> dict[str, tuple[float, float]]:
    """``file:line(function)`` -> (calls per request, own µs per request under the profiler)."""
    stats = pstats.Stats(str(prof)).stats  # type: ignore[attr-defined]
    out: dict[str, tuple[float, float]] = {}
    for (file, line, func), (_cc, nc, tt, _ct, _callers) in stats.items():
        # a function's repr carries its address, different in every process
        name = f"{short(file)}:{line}({func})" if line else ADDRESS.sub("", func)
        calls, own = out.get(name, (0.0, 0.0))
        out[name] = (calls + nc / requests, own + tt * 1e6 / requests)
    return out


def main() -> None:
    p = harness.parser(__doc__.split("\n\n")[0], duration=8, users=32)
    p.add_argument(
        "--configs",
        default="bare,mix,traced",
        help="subset of bare,mix,traced (bare first)",
    )
    p.add_argument("--top", type=int, default=50, help="functions listed per config")
    args = p.parse_args()
    if args.quick:
        args.duration, args.users, args.top = 2, 4, 10
    configs = [c for c in args.configs.split(",") if c]
    harness.header("Python calls per HTTP request")
    with (
        harness.workdir(args.keep) as work,
        harness.nginx_target(work, "0") as target,
        harness.trace_agent(work, "0") as agent,
    ):
        personas = harness.bench_personas(work / "personas-bench.csv")
        counts: dict[str, dict[str, tuple[float, float]]] = {}
        rows = []
        for config in configs:
            out = work / config / "calls"
            run = harness.run_locust(
                work,
                config,
                [harness.BARE if config == "bare" else harness.LOCUSTFILE, CALLS],
                target.url,
                users=args.users,
                run_time=args.duration,
                personas=None if config == "bare" else personas,
                env=dict(
                    BENCH_CALLS_OUT=str(out),
                    **(harness.traced_env(agent.url) if config == "traced" else {}),
                ),
                target=target,
            )
            requests = json.loads(Path(str(out) + ".json").read_text())["requests"]
            counts[config] = per_request(Path(str(out) + ".prof"), max(requests, 1))
            calls = sum(c for c, _ in counts[config].values())
            rows.append([config, requests, run.http_failures, f"{calls:.0f}"])
        print(
            harness.table(
                ["config", "HTTP requests profiled", "failures", "calls/request"], rows
            )
        )
        base = counts.get("bare", {})
        for config in configs:
            if config == "bare":
                continue
            other = counts[config]
            added = sorted(
                (
                    (n, c - base.get(n, (0.0, 0.0))[0], c, o)
                    for n, (c, o) in other.items()
                ),
                key=lambda r: -r[1],
            )
            print(f"\n### {config}: calls per request over bare\n")
            print(
                harness.table(
                    [
                        "function",
                        "added calls/req",
                        f"{config} calls/req",
                        "bare calls/req",
                        "own share",
                    ],
                    [
                        [
                            n,
                            f"{d:.2f}",
                            f"{c:.2f}",
                            f"{base.get(n, (0.0, 0.0))[0]:.2f}",
                            f"{o / sum(x for _, x in other.values()):.1%}",
                        ]
                        for n, d, c, o in added[: args.top]
                    ],
                )
            )


if __name__ == "__main__":
    main()
