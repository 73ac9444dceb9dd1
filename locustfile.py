"""Payment load generator: realistic, stateful traffic for POST /pay and the report endpoint.

This file is the table of contents. Personas (``personas.csv``) become user classes; their
journeys live in ``journeys/``; the run's setup checks, results, SLOs, load profiles and tracing
hook into Locust's events when imported.

    locust -f locustfile.py --host http://127.0.0.1:8000            # web UI on :8089
    locust -f locustfile.py --headless -u 10 -r 2 -t 60s --tags operator
"""

import journeys.ctrl_c  # Ctrl-C ends the run between requests; a waiting master lets its workers go
import journeys.env_names
import journeys.lost_master  # a worker whose master is gone mid-test stops its load in ~10 s
import journeys.options  # --personas, --seed, --request-timeout, --wait-for-host, --trace-sample-rate, --journey-rate
import journeys.results  # journey stats, web UI tabs, CSV/HTML, SLO exit code
import journeys.scrub_sinks  # every log record and exception row without card numbers or the token
import journeys.tracing  # noqa: F401  (Datadog APM from DD_* env vars)
from journeys.options import personas_path, read_the_baseline, refuse_taken_ports
from journeys.profiles import LoadProfile  # noqa: F401  (--profile steady|spike|soak|step)
from journeys.run_checks import prepare_run  # noqa: F401  (setup checked: exit 2 before traffic)
from journeys.users import persona_user_classes

refuse_taken_ports()  # before Locust opens its --csv files and --processes forks
read_the_baseline()  # --baseline: an earlier run's CSVs, read before Locust opens this run's
globals().update(persona_user_classes(personas_path()))
