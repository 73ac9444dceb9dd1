"""Worker → master: each stats report carries the journey counters counted since the last one.

A worker adds its book to the report Locust sends every few seconds (and once more when it
quits) and starts counting afresh; the master adds every report to its own book. So the master's
numbers are the sum of the workers', and nothing is counted twice.
"""

from __future__ import annotations

from locust import events

from journeys.results.collector import book

REPORT_KEY = "journeys"


@events.report_to_master.add_listener
def send_journey_counters(client_id: str, data: dict, **_kwargs) -> None:
    if book:
        data[REPORT_KEY] = book.serialize()
        book.reset()


@events.worker_report.add_listener
def merge_journey_counters(client_id: str, data: dict, **_kwargs) -> None:
    book.merge(data.get(REPORT_KEY) or [])
