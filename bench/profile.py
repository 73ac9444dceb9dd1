"""Where the generator's CPU goes: py-spy samples one saturated Locust run and ranks the hot spots.

    python bench/profile.py --config mix --duration 20 --users 32
    python bench/profile.py --config traced --top 40

Runs the same setup as ``bench/throughput.py`` (generator on core 1, nginx stand-in and trace agent
on core 0) for one config, records it with ``py-spy record --format raw`` (needs ``py-spy`` from
PyPI on PATH or beside this Python; root or ptrace permission), and prints the functions with the
largest share of samples: *inclusive* (the function and everything it calls) and *self* (its own
code). Only frames from this project (``journeys/``, ``payment_contract/``, ``locustfile.py``) or
from any package when ``--all`` is given are ranked inclusively; self time is ranked for all.
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import harness

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
OURS = ("journeys/", "payment_contract/", "locustfile.py", "bench/")


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit(
            "py-spy not found: pip install py-spy (it needs root or ptrace permission)"
        )
    return found


def short(path: str) -> str:
    for marker in (
        "site-packages/",
        "/work/main/",
        str(harness.ROOT) + "/",
        "lib/python3",
    ):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def parse(raw: Path) -> tuple[int, collections.Counter, collections.Counter]:
    """(samples, inclusive, self) by ``file:function`` from py-spy's collapsed stacks."""
    inclusive: collections.Counter = collections.Counter()
    own: collections.Counter = collections.Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        names = []
        for frame in stack.split(";"):
            m = FRAME.match(frame.strip())
            names.append(f"{short(m['file'])}:{m['func']}" if m else frame.strip())
        for name in set(names):
            inclusive[name] += n
        own[names[-1]] += n
    return total, inclusive, own


def main() -> None:
    p = harness.parser(__doc__.split("\n\n")[0], duration=20, users=32)
    p.add_argument("--config", choices=("bare", "mix", "traced"), default="mix")
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    p.add_argument(
        "--all", action="store_true", help="rank every package's functions inclusively"
    )
    p.add_argument(
        "--trace-sample-rate",
        default="1",
        help="traced config: share of journeys traced (LOCUST_TRACE_SAMPLE_RATE)",
    )
    p.add_argument(
        "--personas",
        type=Path,
        help="personas file (default: the project's customers and operators)",
    )
    args = p.parse_args()
    if args.quick:
        args.duration, args.users, args.top = 4, 4, 10
    spy = py_spy()
    harness.header(f"Profile of config {args.config}")
    with (
        harness.workdir(args.keep) as work,
        harness.nginx_target(work, "0") as target,
        harness.trace_agent(work, "0") as agent,
    ):
        personas = None
        if args.config != "bare":
            personas = args.personas or harness.bench_personas(
                work / "personas-bench.csv"
            )
        cmd = harness.locust_base(
            [harness.BARE] if args.config == "bare" else [harness.LOCUSTFILE],
            target.url,
            args.users,
            args.users,
            args.duration + 3,
            work / "run",
            personas,
        )
        env = harness.clean_env(
            **(
                harness.traced_env(agent.url, args.trace_sample_rate)
                if args.config == "traced"
                else {}
            )
        )
        raw = work / "profile.txt"
        with open(work / "locust.log", "wb") as log:
            proc = subprocess.Popen(
                harness.pinned("1", cmd),
                cwd=harness.ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            time.sleep(3)  # imports and spawn: not what we profile
            # taskset execs the command, so proc.pid is Locust's own pid
            subprocess.run(
                [
                    spy,
                    "record",
                    "--pid",
                    str(proc.pid),
                    "--duration",
                    f"{args.duration:g}",
                    "--rate",
                    str(args.rate),
                    "--format",
                    "raw",
                    "--output",
                    str(raw),
                    "--nonblocking",
                ],
                check=True,
                timeout=args.duration + 60,
            )
            proc.wait(120)
        total, inclusive, own = parse(raw)
        _, _, rps = harness.http_counts(Path(f"{work / 'run'}_stats.csv"))
        print(f"{total} samples, {rps:,.0f} HTTP req/s\n")
        ranked = [
            (k, v)
            for k, v in inclusive.most_common()
            if args.all or any(o in k for o in OURS)
        ]
        print(
            harness.table(
                ["inclusive: file:function", "% of samples"],
                [[k, f"{100 * v / total:.1f}"] for k, v in ranked[: args.top]],
            )
        )
        print()
        print(
            harness.table(
                ["self: file:function", "% of samples"],
                [[k, f"{100 * v / total:.1f}"] for k, v in own.most_common(args.top)],
            )
        )


if __name__ == "__main__":
    main()
