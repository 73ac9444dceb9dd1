"""A real trace intake for tests: ``ddapm-test-agent`` on free 127.0.0.1 ports.

    with TraceAgent.start(tmp_path) as agent:
        run_something(env={"DD_TRACE_AGENT_URL": agent.url})
        traces = agent.wait_for(lambda traces: len(traces) >= 3)  # {trace_id: [span, ...]}

``traces()`` groups what the agent received by trace id; a trace whose spans came from several
processes (the generator and the service) is one list.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from tests.conftest import free_port, stop_process, wait_http


@dataclass
class TraceAgent:
    """A running ddapm-test-agent: ``url`` is what DD_TRACE_AGENT_URL should point at."""

    url: str
    proc: subprocess.Popen
    log_path: Path

    @classmethod
    def start(cls, tmp_path: Path) -> TraceAgent:
        port, http_port, grpc_port = free_port(), free_port(), free_port()
        log_path = tmp_path / f"trace-agent-{port}.log"
        exe = Path(sys.executable).with_name("ddapm-test-agent")
        cmd = (
            [str(exe)]
            if exe.exists()
            else [sys.executable, "-m", "ddapm_test_agent.agent"]
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
        args = [
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--otlp-http-port",
            str(http_port),
            "--otlp-grpc-port",
            str(grpc_port),
            "--log-level",
            "WARNING",
        ]
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(
                cmd + args,
                env=env,
                cwd=tmp_path,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        agent = cls(f"http://127.0.0.1:{port}", proc, log_path)
        try:
            wait_http(agent.url + "/info", timeout=30)
        except TimeoutError:
            agent.stop()
            raise RuntimeError(
                "ddapm-test-agent did not start:\n"
                + log_path.read_text(errors="replace")
            )
        return agent

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        stop_process(self.proc)

    def traces(self) -> dict[int, list[dict]]:
        """Every span received so far, grouped by (64-bit) trace id."""
        with urllib.request.urlopen(self.url + "/test/traces", timeout=10) as r:
            data = json.load(r)
        by_id: dict[int, list[dict]] = {}
        for trace in data:
            for span in trace:
                by_id.setdefault(span["trace_id"], []).append(span)
        return by_id

    def spans(self) -> list[dict]:
        return [s for trace in self.traces().values() for s in trace]

    def wait_for(
        self, done: Callable[[dict[int, list[dict]]], bool], timeout: float = 15.0
    ) -> dict[int, list[dict]]:
        """Poll ``traces()`` until ``done(traces)`` (writers flush about once a second)."""
        deadline = time.monotonic() + timeout
        while True:
            traces = self.traces()
            if done(traces) or time.monotonic() > deadline:
                return traces
            time.sleep(0.5)

    def settled(
        self, quiet: float = 1.5, timeout: float = 20.0
    ) -> dict[int, list[dict]]:
        """``traces()`` once nothing new has arrived for ``quiet`` seconds (senders have flushed)."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while True:
            traces = self.traces()
            count = sum(len(spans) for spans in traces.values())
            if count != last:
                last, since = count, time.monotonic()
            elif (
                count
                and time.monotonic() - since >= quiet
                or time.monotonic() > deadline
            ):
                return traces
            time.sleep(0.25)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
