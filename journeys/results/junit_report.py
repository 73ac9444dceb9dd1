"""``--junit-xml FILE``: the SLO verdict as a JUnit XML test report, one testcase per check.

CI systems show test results from JUnit XML (GitLab's ``artifacts:reports:junit``, Jenkins'
``junit`` step, a test-report action on GitHub): each check is a testcase named by its metric
in a class named by its scope (``checkout`` / ``p95_ms``), and a failed one fails with the
check's message (``p95 612 ms > 500 ms (checkout, 112 ms over)``); a check that was not run (an
``--slo-targets`` row of a journey left out by ``--tags``) is ``skipped``. Written with the CSV files
at the end of the run, from the same verdict; a run stopped at setup (exit 2) writes none::

    <testsuites name="payment load" tests="15" failures="1" skipped="0">
      <testsuite name="SLO verdict" tests="15" failures="1" skipped="0" errors="0">
        <testcase classname="checkout" name="p95_ms">
          <failure type="p95_ms" message="p95 612 ms > 500 ms (checkout, 112 ms over)">...
"""

from __future__ import annotations

import re
from pathlib import Path
from xml.etree import ElementTree

from journeys.argtypes import junit_file
from journeys.results.slo import Check, Verdict

#: Characters XML 1.0 cannot hold (control characters): a message quoting a service's answer
#: could carry one, and the whole report would not parse.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def add_option(group) -> None:
    group.add_argument(
        "--junit-xml",
        type=junit_file,
        default=None,
        metavar="FILE",
        env_var="LOCUST_JUNIT_XML",
        help="Write the SLO verdict as a JUnit XML test report to FILE at the end of the run: "
        "one testcase per check, failed checks failing with their message (for CI test reports).",
    )


def _text(value: str) -> str:
    return _NOT_XML.sub("\ufffd", value)


def _testcase(check: Check) -> ElementTree.Element:
    case = ElementTree.Element(
        "testcase", classname=_text(check.scope), name=_text(check.metric)
    )
    if check.not_run:
        ElementTree.SubElement(case, "skipped", message=_text(check.message))
    elif not check.passed:
        failure = ElementTree.SubElement(
            case, "failure", type=_text(check.metric), message=_text(check.message)
        )
        failure.text = _text(f"target {check.target}, actual {check.actual}")
    ElementTree.SubElement(case, "system-out").text = _text(check.message)
    return case


def document(verdict: Verdict) -> ElementTree.Element:
    """The ``<testsuites>`` element of ``verdict``: one suite, a testcase per check."""
    counts = {
        "tests": str(len(verdict.checks)),
        "failures": str(len(verdict.failures)),
        "skipped": str(len(verdict.not_run)),
    }
    root = ElementTree.Element("testsuites", name="payment load", **counts)
    suite = ElementTree.SubElement(
        root, "testsuite", name="SLO verdict", **counts, errors="0"
    )
    suite.extend(_testcase(check) for check in verdict.checks)
    return root


def write(path: str, verdict: Verdict) -> Path:
    """Write ``verdict``'s report to ``path`` (its folder made if missing); returns the path."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    tree = ElementTree.ElementTree(document(verdict))
    ElementTree.indent(tree)
    tree.write(file, encoding="utf-8", xml_declaration=True)
    return file
