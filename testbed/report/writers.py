"""Write a RunReport as JSON (machines), JUnit XML (CI dashboards) and HTML (people)."""
from __future__ import annotations

import datetime as dt
import json
import socket
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from testbed.checks.result import CheckResult
from testbed.report import views
from testbed.report.model import RunReport
from testbed.report.page import write_html

FORMATS = ("json", "junit", "html")
FILES = {"json": "report.json", "junit": "junit.xml", "html": "report.html"}
SUITE_PROPERTIES = ("datapath", "impairments", "ovs", "controller", "kernel", "os_ken", "testbed")


def write_json(rep: RunReport, path: Path) -> None:
    path.write_text(json.dumps(rep.to_dict(), indent=2, default=str), encoding="utf-8")


def _property_value(v: Any) -> str:
    """JUnit property values are strings: scalars as they are, lists and objects as JSON."""
    if isinstance(v, str):
        return v
    if isinstance(v, float):
        return f"{v:.6g}"
    return json.dumps(v, default=str)


def _properties(parent: ET.Element, values: dict[str, Any]) -> None:
    if values:
        props = ET.SubElement(parent, "properties")
        for k, v in values.items():
            ET.SubElement(props, "property", name=str(k), value=_property_value(v))


def _testcase(suite: ET.Element, rep: RunReport, c: CheckResult, slice_name: str | None) -> None:
    """One check as one testcase; its measurements (metrics) as the testcase's <properties>,
    so a dashboard shows the measured value and the limit beside the verdict."""
    classname = f"{rep.name}.{c.kind}" + (f".{slice_name}" if slice_name else "")
    case = ET.SubElement(suite, "testcase", classname=classname, name=c.name, time=f"{c.seconds:.3f}")
    _properties(case, ({"slice": slice_name} if slice_name else {}) | c.metrics)  # a slice check names it too
    if c.status == "fail":
        ET.SubElement(case, "failure", message=c.detail, type=c.metrics.get("verdict", "fail")).text = \
            json.dumps(c.metrics, default=str)
    elif c.status == "skip":
        ET.SubElement(case, "skipped", message=c.detail)


def write_junit(rep: RunReport, path: Path) -> None:
    """A testsuite per check kind; a testcase per check (each SLO verdict, each isolation row);
    a run that failed to build is one `run` suite with an error."""
    stamp = dt.datetime.fromtimestamp(rep.started, dt.timezone.utc).isoformat(timespec="seconds")
    slices = views.workload_slices(rep)
    by_kind: dict[str, list[CheckResult]] = {}
    for c in rep.checks:
        by_kind.setdefault(c.kind, []).append(c)
    suites = ET.Element("testsuites", name=f"testbed {rep.name}", tests=str(len(rep.checks) + bool(rep.error)),
                        failures=str(len(rep.failed)), errors=str(int(bool(rep.error))),
                        skipped=str(sum(c.status == "skip" for c in rep.checks)),
                        time=f"{rep.timings.get('total_s', 0.0):.3f}", timestamp=stamp)
    run_props = {"run_id": rep.run_id, "topology": rep.topology, "verdict": rep.verdict,
                 **{k: rep.platform[k] for k in SUITE_PROPERTIES if k in rep.platform}}
    for kind, checks in by_kind.items():
        suite = ET.SubElement(suites, "testsuite", name=kind, tests=str(len(checks)),
                              failures=str(sum(c.status == "fail" for c in checks)), errors="0",
                              skipped=str(sum(c.status == "skip" for c in checks)),
                              time=f"{sum(c.seconds for c in checks):.3f}", timestamp=stamp,
                              hostname=socket.gethostname())
        _properties(suite, run_props)
        for c in checks:
            _testcase(suite, rep, c, views.slice_of_check(c, slices) if c.kind == "workload" else
                      c.metrics.get("slice") if c.kind == "slice" else None)
    if rep.error:
        suite = ET.SubElement(suites, "testsuite", name="run", tests="1", failures="0", errors="1", skipped="0",
                              time="0", timestamp=stamp)
        _properties(suite, run_props)
        case = ET.SubElement(suite, "testcase", classname=f"{rep.name}.run", name="build")
        ET.SubElement(case, "error", message=rep.error)
    ET.indent(suites)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


WRITERS = {"json": write_json, "junit": write_junit, "html": write_html}


def write_all(rep: RunReport, out_dir: Path, formats: tuple[str, ...] = FORMATS) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for fmt in FORMATS:
        if fmt in formats:
            WRITERS[fmt](rep, out_dir / FILES[fmt])
            written[fmt] = out_dir / FILES[fmt]
    return written
