"""The last row of Locust's ``--csv`` ``_stats_history.csv``: the final totals, as in ``_stats.csv``.

Locust samples the history once a second while it runs, and not when it shuts down, so the last
row missed what the last second added: a Ctrl-C run's history ended at 8 requests where its
``_stats.csv`` (rewritten from the final stats by ``end_of_run``) counted 18. Locust's CSV
writer here adds one more row, of the final stats, as it closes its files: after the users have
stopped and a master has its workers' final reports.
"""

from __future__ import annotations

import time

import locust.stats


class FinalRowCSVFileWriter(locust.stats.StatsCSVFileWriter):
    """Locust's ``--csv`` writer, ending the history with a row of the final stats."""

    def close_files(self) -> None:
        try:  # a Locust whose writer lacks these privates still gets its files closed
            self._stats_history_data_rows(self.stats_history_csv_writer, time.time())
        finally:
            super().close_files()


# Locust's main looks the class up when it creates the writer, after loading the locustfile
locust.stats.StatsCSVFileWriter = FinalRowCSVFileWriter
