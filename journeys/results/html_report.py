"""The journeys section of Locust's ``--html`` report: verdict, journeys table, funnels, persona mix.

Locust 2.47 renders its report from fixed template args (``locust/html.py``), with no hook for
extra content, and writes the file before the ``quitting`` event. So at ``quitting`` we insert a
self-contained section (inline CSS, inline SVG funnels, no scripts) just before ``</body>`` of the
file Locust wrote.
"""

from __future__ import annotations

import re
from html import escape
from pathlib import Path

from journeys.results.slo import CHECK_TITLES, verdict_rows
from journeys.results.snapshot import Snapshot
from journeys.results.tables import (
    ALL,
    MIX_TITLES,
    display,
    funnel_stages_of_row,
    journey_titles,
    paced,
    pct,
)
from journeys.service_http import without_credentials

SECTION_ID = "journey-results"
#: the target as Locust's report data holds it (group 2), perhaps with ``user:password@``
_HOST = re.compile(r'("host": ")([A-Za-z][A-Za-z0-9+.-]*://[^"]*)(")')
STYLE = f"""
#{SECTION_ID} {{ font-family: Roboto, Helvetica, Arial, sans-serif; color: #1d1d1f; background: #fff;
  max-width: 1400px; margin: 0 auto; padding: 8px 24px 32px; }}  /* the journeys table: ~1,300 px */
#{SECTION_ID} h2 {{ font-size: 2.125rem; font-weight: 400; margin: 32px 0 12px; }}
#{SECTION_ID} table {{ border-collapse: collapse; font-size: 0.8rem; width: 100%; }}
#{SECTION_ID} th, #{SECTION_ID} td {{ border-bottom: 1px solid #e0e0e0; padding: 4px; text-align: right; }}
#{SECTION_ID} th {{ font-weight: 500; }}
#{SECTION_ID} td.l, #{SECTION_ID} th.l {{ text-align: left; }}
#{SECTION_ID} tr.all td {{ font-weight: 600; }}
#{SECTION_ID} .verdict {{ font-size: 1.2rem; font-weight: 700; padding: 8px 12px; border-radius: 4px; }}
#{SECTION_ID} .pass {{ background: #e6f4ea; color: #0d652d; }}
#{SECTION_ID} .fail {{ background: #fce8e6; color: #a50e0e; }}
#{SECTION_ID} .not-run {{ color: #5f6368; font-style: italic; }}
#{SECTION_ID} .scroll {{ overflow-x: auto; margin-bottom: 12px; }}
#{SECTION_ID} .funnels {{ display: flex; flex-wrap: wrap; gap: 32px; }}
"""

TEXT = frozenset(
    {
        "phase",
        "journey",
        "persona",
        "user_class",
        "role",
        "result",
        "scope",
        "metric",
        "message",
    }
)


def _cell(key: str, value) -> str:
    text = escape(str(display(key, value)))
    return f'<td class="l">{text}</td>' if key in TEXT else f"<td>{text}</td>"


def _table(headers, rows, css_class=lambda row: "") -> str:
    head = "".join(
        f'<th class="{"l" if k in TEXT else ""}">{escape(t)}</th>' for k, t in headers
    )
    body = "".join(
        f'<tr class="{css_class(row)}">'
        + "".join(_cell(k, row.get(k)) for k, _ in headers)
        + "</tr>"
        for row in rows
    )
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="scroll">{table}</div>'


def funnel_svg(row: dict) -> str:
    """A horizontal bar per funnel stage, widths relative to the journeys started."""
    stages = funnel_stages_of_row(row)
    started = stages[0][1] or 1
    label_w, bar_w, bar_h, gap = 100, 280, 22, 6
    height = len(stages) * (bar_h + gap) + 28
    width = label_w + bar_w + 120
    parts = [
        (
            # scaled down on a narrow screen: at its full width the counts at the right were
            # cut off on a phone
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" style="max-width: 100%; height: auto" '
            f'role="img" aria-label="funnel {escape(row["journey"])}">'
        ),
        f'<text x="0" y="16" font-size="14" font-weight="700">{escape(row["journey"])}</text>',
    ]
    colors = ("#4285f4", "#f4b400", "#ab47bc", "#0f9d58", "#db4437", "#9e9e9e")
    for i, (stage, count) in enumerate(stages):
        y = 28 + i * (bar_h + gap)
        width = max(1.0, bar_w * count / started) if count else 0
        x = label_w + (bar_w - width) / 2
        parts.append(f'<text x="0" y="{y + 16}" font-size="12">{escape(stage)}</text>')
        parts.append(
            f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="{bar_h}" fill="{colors[i % len(colors)]}" rx="3"/>'
        )
        # "4 (100%)" as the web UI's Funnel tab writes it: "4 100%" read as 4100%
        share = f" ({pct(count / started, 0)})" if stages[0][1] else ""
        parts.append(
            f'<text x="{label_w + bar_w + 8}" y="{y + 16}" font-size="12">{count}{escape(share)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


PHASE_TITLES = (
    ("phase", "Phase"),
    ("window", "Window (s)"),
    ("target_users", "Target users"),
    ("requests", "Requests"),
    ("failures", "Failures"),
    ("error_rate", "Error rate"),
    ("p50_ms", "p50 ms"),
    ("p95_ms", "p95 ms"),
)


def profile_part(report) -> str:
    """A load profile test's phase table and the lines under it (stops, the comparison), as
    the console prints them (``journeys.profiles.report.PhaseReport``); nothing without one."""
    if report is None:
        return ""
    rows = [
        {
            **r,
            "window": f"{r['start_s']:g}-{r['end_s']:g}",
            "error_rate": pct(r["error_rate"]),
        }
        for r in report.table
    ]
    notes = "".join(f"<li>{escape(line)}</li>" for line in report.notes)
    return (
        '<h2>Load profile</h2><div id="load-profile">'
        f"<p>{escape(report.title)}</p>"
        + _table(PHASE_TITLES, rows)
        + (f"<ul>{notes}</ul>" if notes else "")
        + "</div>"
    )


def section(snapshot: Snapshot) -> str:
    verdict = snapshot.verdict
    status = "pass" if verdict.passed else "fail"
    failed = "".join(f"<li>{escape(c.message)}</li>" for c in verdict.failures)
    all_rows = [r for r in snapshot.rows if r["persona"] == ALL]
    return (
        f'<section id="{SECTION_ID}"><style>{STYLE}</style>'
        f"<h2>SLO verdict</h2>"
        f'<div class="verdict {status}">{escape(verdict.headline().split(" - ")[0])}</div>'
        + (f"<ul>{failed}</ul>" if failed else "")
        + f"<p>Targets: {escape(verdict.targets.describe())}</p>"
        + (f"<p>Baseline: {escape(snapshot.baseline)}</p>" if snapshot.baseline else "")
        + "<h2>Journeys</h2>"
        + (
            _table(
                journey_titles(paced(snapshot.rows)),
                snapshot.rows,
                lambda r: "all" if r["persona"] == ALL else "",
            )
            if snapshot.rows
            else "<p>No journeys were recorded.</p>"
        )
        + '<h2>Journey funnels</h2><div class="funnels">'
        + "".join(funnel_svg(r) for r in all_rows)
        + "</div><h2>Persona mix</h2>"
        + _table(MIX_TITLES, snapshot.mix)
        + "<h2>SLO checks</h2>"
        + _table(
            CHECK_TITLES,
            verdict_rows(verdict, failed_first=True)[1:],
            lambda r: "not-run" if r.get("not_run") else "" if r["passed"] else "fail",
        )
        + profile_part(snapshot.profile)
        + "</section>"
    )


def insert(html: str, snapshot: Snapshot) -> str:
    """``html`` with the journeys section just before ``</body>`` (replacing an earlier one),
    and its target without ``user:password@`` (Locust's report quotes ``--host`` whole; every
    other output leaves a password out)."""
    html = _HOST.sub(lambda m: m[1] + without_credentials(m[2]) + m[3], html)
    start = html.find(f'<section id="{SECTION_ID}">')
    if start != -1:
        end = html.find("</section>", start) + len("</section>")
        html = html[:start] + html[end:]
    at = html.rfind("</body>")
    if at == -1:
        return html + section(snapshot)
    return html[:at] + section(snapshot) + html[at:]


def inject(path: str | Path, snapshot: Snapshot) -> bool:
    """Insert the section into Locust's report file; False when there is no report there."""
    path = Path(path)
    if not path.is_file():
        return False
    path.write_text(
        insert(path.read_text(encoding="utf-8"), snapshot), encoding="utf-8"
    )
    return True
