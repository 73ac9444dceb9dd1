"""Journey results: statistics, worker → master merging, web UI tabs, CSV, HTML, summary, SLO verdict.

Importing the package registers every listener with Locust's events; ``locustfile.py`` only needs::

    import journeys.results  # noqa: F401

Modules, each with one job:

* ``stats``       bounded histograms and per journey × persona counters (serialize / merge)
* ``collector``   counts ``journey_started`` / ``journey_finished``; times journeys as Locust entries
* ``distributed`` workers send their counters with each stats report; the master adds them up
* ``tables``      the rows every output shows (journeys, funnels, persona mix)
* ``slo``         ``--slo-*`` options, their validation and the verdict
* ``cut_short``   a run stopped before its ``--run-time`` fails the verdict
* ``nothing_ran`` a web UI session with no test to judge (none started, or a reset after the last)
* ``ledger``      every payment the service confirmed; ``reconcile_run`` checks the service's report against it
* ``webui``       Journeys / SLO / Funnel / Personas tabs and CSV downloads
* ``csv_report``, ``html_report``, ``junit_report``, ``summary``   the end-of-run outputs, written
  by ``end_of_run``
* ``history_csv`` Locust's ``_stats_history.csv`` ends with a row of the final totals
* ``rps_window``  Locust's per-second counts keep the last minute, not every second of a long run,
  and its per-second response-time copies are made only for the entry whose are read
"""

from journeys.results import (  # noqa: F401
    collector,
    distributed,
    end_of_run,
    history_csv,
    rps_window,
    slo,
    webui,
)
