"""The last row of Locust's ``--csv`` ``_stats_history.csv``: the final totals, as in ``_stats.csv``.

Locust samples the history once a second while it runs, and not when it shuts down, so the last
row missed what the last second added: a Ctrl-C run's history ended at 8 requests where its
``_stats.csv`` (rewritten from the final stats by ``end_of_run``) counted 18. Locust's CSV
writer here adds one more row, of the final stats, as it closes its files: after the users have
stopped and a master has its workers' final reports.

It also stops Locust's writer greenlet before the files close: Locust closes them at shutdown
while the greenlet still runs, and one that woke after (a ``--processes`` master waiting for its
workers to exit) logged CRITICAL ``Unhandled exception in greenlet ... I/O operation on closed
file`` at the end of a 5-minute run.
"""

from __future__ import annotations

import time

import gevent
import locust.stats


class FinalRowCSVFileWriter(locust.stats.StatsCSVFileWriter):
    """Locust's ``--csv`` writer, ending the history with a row of the final stats."""

    _writer = None

    def stats_writer(self) -> None:
        self._writer = gevent.getcurrent()
        super().stats_writer()

    def close_files(self) -> None:
        if (
            self._writer is not None
        ):  # it gets GreenletExit as it wakes, before it writes
            self._writer.kill(block=False)
        try:  # a Locust whose writer lacks these privates still gets its files closed
            self._stats_history_data_rows(self.stats_history_csv_writer, time.time())
        finally:
            super().close_files()


# Locust's main looks the class up when it creates the writer, after loading the locustfile
locust.stats.StatsCSVFileWriter = FinalRowCSVFileWriter
