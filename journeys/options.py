"""Command-line options the generator adds to Locust (each with a ``LOCUST_*`` env twin).

``--personas`` is special: the persona user classes must exist when Locust imports the
locustfile, before Locust parses options, so ``personas_path`` reads it early, from the same
places (command line, env, config files) Locust reads it from later.
"""

from __future__ import annotations

import sys
from pathlib import Path

from locust import events
from locust.argument_parser import get_empty_argument_parser, setup_parser_arguments

from journeys import journey_rate, rate_form  # noqa: F401  (rate_form: the web UI's field)
from journeys.argtypes import (
    non_negative_seconds,
    positive_seconds,
    readable_file,
    report_file,
    run_time,
    share,
    url_path,
    writable_file,
)
from journeys.option_sources import name_the_source_of_bad_values, source_in
from journeys.option_typos import name_one_dash_typos
from journeys.preflight import master_port_problem, web_port_problem
from journeys.results import baseline, junit_report, reconcile_run
from journeys.setup_stop import stop

DEFAULT_PERSONAS = "personas.csv"
PROJECT_DIR = Path(__file__).resolve().parent.parent


def personas_path(argv: list[str] | None = None) -> Path:
    """The personas file (default: ./personas.csv), with Locust's precedence: ``--personas`` >
    ``LOCUST_PERSONAS`` > ``personas =`` in a config file (``--config``, ``locust.conf``,
    ``~/.locust.conf``, ``pyproject.toml``) > default.

    Locust's own pre-import parser reads those files the way Locust does later. The default
    falls back to the file shipped beside ``locustfile.py`` when the working directory has
    none, so ``locust -f path/to/locustfile.py`` works from anywhere.
    """
    _, known = _personas_option(argv)
    # an empty LOCUST_PERSONAS (or --personas "") means the default, as before
    chosen = known.personas or DEFAULT_PERSONAS
    path = Path(chosen)
    if chosen == DEFAULT_PERSONAS and not path.exists():
        return PROJECT_DIR / DEFAULT_PERSONAS
    return path


def personas_source(argv: list[str] | None = None) -> str | None:
    """Where ``--personas`` came from when not from the command line (``LOCUST_PERSONAS``, a
    config file line), for a bad file's message."""
    parser, _ = _personas_option(argv)
    return source_in(parser, "personas")


def _personas_option(argv: list[str] | None):
    """The parser that reads ``--personas`` early, and what it read."""
    parser = get_empty_argument_parser(add_help=False)
    parser.add_argument(
        "--personas", default=DEFAULT_PERSONAS, env_var="LOCUST_PERSONAS"
    )
    known, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    return parser, known


class _LeftToLocust(Exception):
    """A value this early read cannot take: Locust's own parser says so later."""


def _leave_it_to_locust(message: str):
    raise _LeftToLocust(message)


def refuse_taken_ports(argv: list[str] | None = None) -> None:
    """A taken port ends the run here with exit 2, while the locustfile loads, before Locust
    opens its ``--csv`` files: those of the live run that usually holds the port (the same
    command started twice) stay whole, where Locust would empty them. The web UI's port
    (``run_checks`` checks it again, for a locustfile that does not call this); and a master's
    (``--master``, or ``--processes`` without ``--worker``) ``--master-bind-port``, before
    ``--processes`` forks its workers: Locust found out only after, with a traceback, and left
    those workers running. So does a ``--processes`` master whose workers would dial another
    port."""
    known = locust_options_early(argv)
    if known is None or known.worker or _answers_and_exits(known):
        return
    web_ui = known.headful or not known.headless
    problem = web_ui and web_port_problem(known.web_host, known.web_port)
    if not problem and (known.master or known.processes):
        problem = (known.processes and forked_workers_port_problem(known)) or (
            master_port_problem(known.master_bind_host, known.master_bind_port)
        )
    if problem:
        stop(known, problem)


def read_the_baseline(argv: list[str] | None = None) -> None:
    """``--baseline``: the earlier run's CSV files read while the locustfile loads, before
    Locust opens this run's ``--csv`` files (at the same prefix it would empty them) and before
    ``--processes`` forks; a baseline that cannot be read ends the run here with exit 2."""
    parser, known = _options_early(argv)
    if known is None or known.worker or _answers_and_exits(known):
        return
    baseline.read_at_start(known, source_in(parser, "baseline"))


def _answers_and_exits(known) -> bool:
    """``--list`` and ``--show-task-ratio(-json)``: Locust prints and exits, opening no port
    (a look at the classes while a run holds the ports)."""
    return bool(
        known.list_commands or known.show_task_ratio or known.show_task_ratio_json
    )


def locust_options_early(argv: list[str] | None = None):
    """Locust's own options while the locustfile loads, read from the places Locust reads
    them (flags, LOCUST_*, config files), our ``--junit-xml`` (a report path a setup stop
    clears, as Locust's ``--html``) and ``--baseline`` (read before Locust opens ``--csv``);
    None when a value is bad (left for Locust's parser to name, once) and for --help and
    --version (Locust's to answer)."""
    return _options_early(argv)[1]


def _options_early(argv: list[str] | None = None):
    """``locust_options_early`` and the parser that read them (where a value came from:
    ``option_sources.source_in``)."""
    parser = get_empty_argument_parser(add_help=False)
    setup_parser_arguments(parser)
    junit_report.add_option(parser)
    baseline.add_options(parser)
    # a help request checks nothing, stops nothing, removes no report (the image's --help
    # imports the locustfile: docker/help.py)
    parser.add_argument("-h", "--help", action="store_true", dest="asks_for_help")
    parser.error = _leave_it_to_locust
    try:
        known, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    except (_LeftToLocust, SystemExit):
        return parser, None
    return parser, None if known.asks_for_help else known


def forked_workers_port_problem(known) -> str | None:
    """``--processes``: Locust's forked workers dial ``--master-port``, not the port their
    master listens on; when the two differ they never meet, and a headless master waits for
    them for good (a CI job hung until killed)."""
    if known.master_port == known.master_bind_port:
        return None
    return (
        f"--processes: the forked workers would connect to port {known.master_port} "
        f"(--master-port, LOCUST_MASTER_NODE_PORT), but the master listens on "
        f"{known.master_bind_port} (--master-bind-port, LOCUST_MASTER_BIND_PORT): pass the "
        "same port to both."
    )


@events.init_command_line_parser.add_listener
def add_options(parser) -> None:
    name_the_source_of_bad_values(parser)
    name_one_dash_typos(parser)  # a typo's message, not the one argparse made of it
    group = parser.add_argument_group("payment load generator")
    group.add_argument(
        "--personas",
        default=DEFAULT_PERSONAS,
        env_var="LOCUST_PERSONAS",
        help="CSV of personas: the traffic mix (default personas.csv). Workers need the same file.",
    )
    group.add_argument(
        "--seed",
        type=int,
        default=None,
        env_var="LOCUST_SEED",
        help="Seed for all generated data; the same seed repeats a run's data (default: random, logged).",
    )
    group.add_argument(
        "--request-timeout",
        type=positive_seconds,
        default=10.0,
        env_var="LOCUST_REQUEST_TIMEOUT",
        help="Seconds a request may take, whole answer included, before it is resent with the same idempotency key (default 10).",
    )
    group.add_argument(
        "--wait-for-host",
        type=non_negative_seconds,
        default=0.0,
        env_var="LOCUST_WAIT_FOR_HOST",
        help="Seconds to wait for the target to come up before the run (default 0: fail at once).",
    )
    group.add_argument(
        "--trace-sample-rate",
        type=share,
        default=1.0,
        env_var="LOCUST_TRACE_SAMPLE_RATE",
        help="Share of journeys traced when tracing is on (default 1: every journey). The others "
        "send 'drop' trace headers, so the service drops its spans for them too.",
    )
    journey_rate.add_option(group)
    reconcile_run.add_option(group)
    junit_report.add_option(group)
    baseline.add_options(group)
    # Locust's options refused before the run, not found out after it: a run time of 0 (no
    # limit: a headless run never ends), report paths we cannot write, TLS files we cannot
    # read and a web base path without its leading slash
    types = {
        "run_time": run_time,
        "csv_prefix": writable_file,
        "html_file": report_file,
        "tls_cert": readable_file,
        "tls_key": readable_file,
        "web_base_path": url_path,
    }
    for action in parser._actions:
        action.type = types.get(action.dest, action.type)
