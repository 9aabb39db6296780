"""Write a RunReport as JSON (machines), JUnit XML (CI dashboards) and HTML (people)."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from testbed.report.model import RunReport

FORMATS = ("json", "junit", "html")


def write_json(rep: RunReport, path: Path) -> None:
    path.write_text(json.dumps(rep.to_dict(), indent=2, default=str))


def write_junit(rep: RunReport, path: Path) -> None:
    suites = ET.Element("testsuites", name=f"testbed {rep.name}")
    by_kind: dict[str, list] = {}
    for c in rep.checks:
        by_kind.setdefault(c.kind, []).append(c)
    if rep.error:
        by_kind.setdefault("run", [])
    for kind, checks in by_kind.items():
        suite = ET.SubElement(suites, "testsuite", name=kind, tests=str(len(checks)),
                              failures=str(sum(c.status == "fail" for c in checks)),
                              skipped=str(sum(c.status == "skip" for c in checks)))
        for c in checks:
            case = ET.SubElement(suite, "testcase", classname=f"{rep.name}.{kind}", name=c.name,
                                 time=f"{c.seconds:.3f}")
            if c.status == "fail":
                ET.SubElement(case, "failure", message=c.detail).text = json.dumps(c.metrics)
            elif c.status == "skip":
                ET.SubElement(case, "skipped", message=c.detail)
        if kind == "run" and rep.error:
            case = ET.SubElement(suite, "testcase", classname=f"{rep.name}.run", name="build")
            ET.SubElement(case, "error", message=rep.error)
            suite.set("tests", "1")
            suite.set("errors", "1")
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


def write_html(rep: RunReport, path: Path) -> None:
    env = Environment(loader=PackageLoader("testbed", "report"), autoescape=select_autoescape(["html", "j2"]))
    path.write_text(env.get_template("report.html.j2").render(r=rep, summary=rep.summary()))


def write_all(rep: RunReport, out_dir: Path, formats: tuple[str, ...] = FORMATS) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for fmt, fn, name in (("json", write_json, "report.json"), ("junit", write_junit, "junit.xml"),
                          ("html", write_html, "report.html")):
        if fmt in formats:
            fn(rep, out_dir / name)
            written[fmt] = out_dir / name
    return written
