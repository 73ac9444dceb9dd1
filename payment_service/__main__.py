"""``python -m payment_service``: start the reference payment service.

Every flag but ``--fault-seed`` has a ``PAYMENT_*`` env twin (the flag wins). Bad values stop the service with exit
code 2 and one line naming the flag and the fix. The internal token comes from
``PAYMENT_INTERNAL_TOKEN``; without it the service refuses to start unless ``--dev`` asks for a
generated one (printed once, for local use only).
"""

from __future__ import annotations

import argparse
import copy
import errno
import functools
import logging
import os
import secrets
import socket
import sqlite3
import sys

from payment_service.env_names import unread_variables
from payment_service.expiry import TTL_HELP, describe, parse_ttl
from payment_service.faults import ERROR_PHASES, RANGES, knob_problem
from payment_service.tracing import (
    MIN_TOKEN_LENGTH,
    check_agent,
    configure_tracing,
    scrub,
    scrub_url,
)

TOKEN_ENV = "PAYMENT_INTERNAL_TOKEN"


def _knob(name: str):
    """A parser for the numeric fault knob ``name``: its range lives in ``faults.RANGES``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if knob_problem(name, value):
            raise argparse.ArgumentTypeError(
                f"{text} is out of range: {RANGES[name][2]}"
            )
        return value

    return parse


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true/false")


def _ttl(text: str):
    try:
        return parse_ttl(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _env(name: str, default):
    return os.environ.get(name) or default


class _Parser(argparse.ArgumentParser):
    """One clear line on bad input instead of the usage wall, naming the env twin that set a bad
    value (nothing on the command line was wrong then)."""

    given: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        #: Each flag's ``PAYMENT_*`` twin, to name it when its value is the bad one.
        self.env_twins: dict[str, str] = {}
        #: A switch's dest and flag: its twin is read once parsing is done (not before --help).
        self.switches: dict[str, str] = {}

    def add_with_twin(
        self, group, flag: str, env: str, help: str, knob: str | None = None, **kwargs
    ) -> None:
        """Add ``flag`` to ``group`` with its ``PAYMENT_*`` twin ``env``: the twin gives the
        default (the flag wins) and ends the help text, and a bad value from it is named. A
        numeric fault ``knob`` is parsed and checked by its range, which the help names."""
        self.env_twins[flag] = env
        if knob is not None:
            kwargs["type"] = _knob(knob)
            help = f"{help}; {RANGES[knob][2]}"
        if kwargs.get("action") == "store_true":
            # argparse does not convert a store_true default: ``parse_args`` reads the twin
            self.switches[flag.lstrip("-").replace("-", "_")] = flag
            kwargs["default"] = None
        else:
            kwargs["default"] = _env(env, kwargs.get("default"))
        group.add_argument(flag, help=f"{help} [{env}].", **kwargs)

    def parse_args(self, args=None, namespace=None):
        self.given = tuple(sys.argv[1:] if args is None else args)
        parsed = super().parse_args(args, namespace)
        for dest, flag in self.switches.items():
            if (
                getattr(parsed, dest) is None
            ):  # not on the command line: its twin, or off
                try:
                    setattr(parsed, dest, _bool(_env(self.env_twins[flag], "false")))
                except argparse.ArgumentTypeError as exc:
                    self.error(f"argument {flag}: {exc}")
        return parsed

    def error(self, message: str):
        # the value is quoted (twice): the token mapped to the wrong variable is not shown
        said = scrub(f"{message.rstrip('.')}{self._source(message)}")
        self.exit(
            2,
            f"payment service: {said}. "
            "Run `python -m payment_service --help` for every flag.\n",
        )

    def _source(self, message: str) -> str:
        """`` (set by PAYMENT_X='v': ...)`` when the flag the message names took its env twin."""
        flag = message.removeprefix("argument ").split(":")[0].split("/")[-1]
        env = self.env_twins.get(flag)
        on_command_line = any(a == flag or a.startswith(flag + "=") for a in self.given)
        if env is None or on_command_line or not os.environ.get(env):
            return ""
        return f" (set by {env}={os.environ[env]!r}: fix the value or unset it)"


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m payment_service",
        description="Reference payment service (FastAPI + SQLite) for the payment load generator. "
        "The internal token that /internal/* asks for comes from PAYMENT_INTERNAL_TOKEN (no "
        "flag, so ps does not show it; without it, pass --dev). Each flag but --fault-seed has "
        "a PAYMENT_* env twin, shown in brackets. Tracing is on with DD_TRACE_ENABLED=true or "
        "DD_AGENT_HOST (docs/tracing.md).",
    )
    add = functools.partial(p.add_with_twin, p)
    add(
        "--host",
        "PAYMENT_SERVICE_HOST",
        "Bind address (default 127.0.0.1)",
        default="127.0.0.1",
    )
    add("--port", "PAYMENT_SERVICE_PORT", "Port (default 8000)", type=int, default=8000)
    add(
        "--db",
        "PAYMENT_DB",
        "SQLite file (WAL; default payments.sqlite, its folder created)",
        default="payments.sqlite",
    )
    add(
        "--key-ttl",
        "PAYMENT_KEY_TTL",
        "How long a payment's idempotency key is kept: a resend with it within that time gets "
        "the stored answer, after it the key is new (and charges again). Expired keys are "
        f"purged in the background; payments are kept. {TTL_HELP[0].upper()}{TTL_HELP[1:]} "
        "(default 24h)",
        type=_ttl,
        default="24h",
    )
    add(
        "--dev",
        "PAYMENT_DEV",
        "Generate and print an internal token when PAYMENT_INTERNAL_TOKEN is unset",
        action="store_true",
    )
    add(
        "--access-log",
        "PAYMENT_ACCESS_LOG",
        "Log every request line (path without query string, and status)",
        action="store_true",
    )
    faults = p.add_argument_group(
        "fault injection (all off by default; change live with PUT /internal/faults)",
        "Latency, 5xx, stalls and garbage act on a /pay that makes a payment: a refusal "
        "(400, 409, 413, 422) and a replay are answered at once. The rate limit counts every /pay.",
    )
    fadd = functools.partial(p.add_with_twin, faults)
    fadd(
        "--latency-ms",
        "PAYMENT_LATENCY_MS",
        "Added latency per /pay",
        knob="latency_ms",
        default=0,
    )
    fadd(
        "--jitter-ms",
        "PAYMENT_JITTER_MS",
        "Plus a uniform 0..N ms per /pay",
        knob="jitter_ms",
        default=0,
    )
    fadd(
        "--error-rate",
        "PAYMENT_ERROR_RATE",
        "Share of /pay answered with a 5xx",
        knob="error_rate",
        default=0,
    )
    fadd(
        "--error-phase",
        "PAYMENT_ERROR_PHASE",
        "before: 503 and nothing stored; after: payment stored, then 500; mixed: either "
        "(default)",
        choices=ERROR_PHASES,
        default="mixed",
    )
    fadd(
        "--stall-rate",
        "PAYMENT_STALL_RATE",
        "Share of /pay that store the payment and then answer only after --stall-s",
        knob="stall_rate",
        default=0,
    )
    fadd(
        "--stall-s",
        "PAYMENT_STALL_S",
        "Length of a stall (default 30)",
        knob="stall_s",
        default=30,
    )
    fadd(
        "--garbage-rate",
        "PAYMENT_GARBAGE_RATE",
        "Share of /pay answers with a garbage body: HTML, truncated JSON or the wrong shape "
        "(the payment is stored)",
        knob="garbage_rate",
        default=0,
    )
    fadd(
        "--rate-limit-rps",
        "PAYMENT_RATE_LIMIT_RPS",
        "Allow this many /pay per second, above it 429 with Retry-After",
        knob="rate_limit_rps",
        default=0,
    )
    fadd(
        "--report-latency-ms",
        "PAYMENT_REPORT_LATENCY_MS",
        "Added latency per report",
        knob="report_latency_ms",
        default=0,
    )
    fadd(
        "--report-tamper",
        "PAYMENT_REPORT_TAMPER",
        "Reports leave out one succeeded payment, to prove reconciliation catches it",
        action="store_true",
    )
    fadd(
        "--replay-charges",
        "PAYMENT_REPLAY_CHARGES",
        "A replay (same key, same body) charges again under a new payment id instead of "
        "answering the stored payment, to prove duplicate charges are caught",
        action="store_true",
    )
    fadd(
        "--clock-offset-s",
        "PAYMENT_CLOCK_OFFSET_S",
        "The service's clock runs this many seconds ahead (negative: behind) in stored "
        "payments, reports and card expiry, as on another host",
        knob="clock_offset_s",
        default=0,
    )
    faults.add_argument(
        "--fault-seed",
        type=int,
        default=None,
        help="Seed for the fault dice (default random).",
    )
    return p


def parse_settings(argv: list[str] | None = None):
    """Parse flags and env into Settings; bad input exits 2 with a one-line reason."""
    from payment_service.app import Settings
    from payment_service.faults import FaultConfigError, Faults

    parser = build_parser()
    # argparse also converts (and checks) the PAYMENT_* env defaults
    args = parser.parse_args(argv)
    for line in unread_variables(dict(os.environ), set(parser.env_twins.values())):
        print(line, file=sys.stderr, flush=True)
    # every numeric knob has a flag of the same name
    values = {name: float(getattr(args, name)) for name in RANGES}
    # argparse checks choices on the command line only, not the env twin's default
    if args.error_phase not in ERROR_PHASES:
        parser.error(
            f"argument --error-phase: invalid choice: {args.error_phase!r} "
            f"(choose from {', '.join(ERROR_PHASES)})"
        )
    try:
        faults = Faults(
            error_phase=args.error_phase,
            report_tamper=args.report_tamper,
            replay_charges=args.replay_charges,
            **values,
        )
    except FaultConfigError as exc:
        parser.error(str(exc))
    if not 0 < args.port < 65536:
        parser.error(f"argument --port: {args.port} is not a TCP port (1-65535)")
    token = (os.environ.get(TOKEN_ENV) or "").strip()
    if token and not (token.isascii() and token.isprintable()):
        parser.error(
            f"{TOKEN_ENV} has a character an Authorization header cannot carry as is (not "
            "printable ASCII: clients would send it in different encodings). Use letters, "
            "digits and punctuation, e.g. the output of `openssl rand -hex 24`."
        )
    if token and len(token) < MIN_TOKEN_LENGTH:
        parser.error(
            f"{TOKEN_ENV} is shorter than {MIN_TOKEN_LENGTH} characters: answers and logs could "
            "not redact it. Use a longer one, e.g. the output of `openssl rand -hex 24`."
        )
    if not token:
        if not args.dev:
            parser.error(
                f"{TOKEN_ENV} is not set. Set it to the internal token that /internal/generate-report "
                "requires, or pass --dev to generate one for local use."
            )
        token = secrets.token_urlsafe(24)
        # where ``tracing.scrub`` looks: answers and logs redact the generated token as a set one
        os.environ[TOKEN_ENV] = token
        print(
            f"--dev: generated internal token {token} (export {TOKEN_ENV}={token} for the load generator)",
            flush=True,
        )
    # last: every other check passed, so a bad value is reported without holding the port
    args.listener = _listen(parser, args.host, args.port)
    return args, Settings(
        db_path=args.db,
        token=token,
        faults=faults,
        fault_seed=args.fault_seed,
        key_ttl=args.key_ttl,
    )


def _listen(parser: argparse.ArgumentParser, host: str, port: int) -> socket.socket:
    """The bound socket the server will serve on, or one line naming the flag and exit 2: a port
    in use, or a host that is no address of this machine (uvicorn said only "[Errno 98] error
    while attempting to bind", with exit 3)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (OSError, UnicodeError) as exc:
        parser.error(
            f"argument --host: cannot resolve {host!r} ({exc}); pass an IP address"
        )
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        reason = (exc.strerror or str(exc)).lower()
        if exc.errno == errno.EADDRNOTAVAIL:
            parser.error(
                f"argument --host: {host} is no address of this machine ({reason}); "
                "pass one it has, e.g. 127.0.0.1 or 0.0.0.0"
            )
        parser.error(
            f"argument --port: cannot listen on {host}:{port} ({reason}); stop what holds "
            "it or pass another port"
        )
    return sock


def _open_app(create_app, settings):
    """The app over its database; a file SQLite cannot open or use is one line and exit 2 (a
    directory, no such folder, no permission, not a database), not a traceback."""
    try:
        return create_app(settings)
    except (sqlite3.Error, OSError) as exc:
        sys.stderr.write(
            f"payment service: argument --db: cannot use {settings.db_path} as the SQLite "
            f"database ({exc}). Pass --db (or PAYMENT_DB) a writable file path, or a "
            "payments database this service made.\n"
        )
        sys.exit(2)


def _server_class():
    import uvicorn

    class _Server(uvicorn.Server):
        """uvicorn's server that tells the app it is stopping before it waits for requests in
        flight, so a request held by a latency or stall fault ends at once (SIGTERM, Ctrl-C)."""

        def __init__(self, config: uvicorn.Config, on_stop) -> None:
            super().__init__(config)
            self.on_stop = on_stop

        async def shutdown(self, sockets=None) -> None:
            self.on_stop()
            await super().shutdown(sockets)

    return _Server


def main(argv: list[str] | None = None) -> int:
    # before the app is imported, so FastAPI is patched; said after the flags are read, so
    # --help and a bad flag's one line come without it
    tracing_banner = configure_tracing()
    args, settings = parse_settings(argv)
    print(tracing_banner, flush=True)
    import uvicorn

    from payment_service.app import create_app

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = _open_app(create_app, settings)
    active = ", ".join(settings.faults.active) or "off"
    print(
        f"payment service on http://{args.host}:{args.port} (db {settings.db_path}; keys kept "
        f"{describe(settings.key_ttl)}; faults: {active})",
        flush=True,
    )
    check_agent()  # after the start line: its warning must not land inside that line
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        log_config=_timed_log_config(uvicorn.config.LOGGING_CONFIG),
        access_log=args.access_log,
        timeout_graceful_shutdown=5,
    )
    if args.access_log:  # uvicorn's log_level would drop its INFO request lines too
        logging.getLogger("uvicorn.access").setLevel(logging.INFO)
        logging.getLogger("uvicorn.access").addFilter(_paths_only)
    try:
        _server_class()(config, app.state.stopping.set).run(sockets=[args.listener])
    except KeyboardInterrupt:
        # uvicorn re-raises Ctrl-C after its graceful shutdown (``uvicorn.run`` catches it, its
        # ``Server.run`` does not): the stop is done, so end as a shell expects, without a traceback
        return 130
    return 0


def _timed_log_config(base: dict) -> dict:
    """uvicorn's logging config with the time first on each line, as the service's own lines
    have it (uvicorn's request lines had none: no way to put them beside a run's timeline)."""
    config = copy.deepcopy(base)
    for formatter in config["formatters"].values():
        formatter["fmt"] = "%(asctime)s " + formatter["fmt"]
    return config


def _paths_only(record: logging.LogRecord) -> bool:
    """uvicorn's request line without the query string, and its method and path without card
    numbers or the token: a client may put them in a URL (``GET /pay?card=4242...``)."""
    if isinstance(record.args, tuple) and len(record.args) == 5:
        client, method, path, version, status = record.args
        path = scrub_url(str(path).partition("?")[0])  # uvicorn percent-encodes it
        record.args = (client, scrub(str(method)), path, version, status)
    return True


if __name__ == "__main__":
    sys.exit(main())
