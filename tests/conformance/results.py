"""Outcomes of a conformance run: read pytest's JUnit XML, group, write and print them.

One outcome per test: ``passed``, ``failed`` (an assertion in the test), ``error`` (setup or
teardown broke, e.g. the account could not be created) or ``skipped`` (mostly: a feature
``GET /info`` does not advertise). Failures and errors are grouped by *cause*: the first
line of the error with volatile parts (uuids, random names, transaction ids, ports)
masked, so that one server bug shows as one line with a count.

Files written (``.conformance/``): ``results.json`` (everything, per test) and
``summary.md`` (tables ready for docs/compatibility.md).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.conformance.summary import markdown

OUTCOMES = ("passed", "failed", "error", "skipped")
DETAIL_LINES = 40
CAUSE_WIDTH = 180

_VOLATILE = [
    (re.compile(r"tx[0-9a-f]{21}-[0-9a-f]{10}"), "<txid>"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
    (re.compile(r"AUTH_[0-9A-Za-z_-]+"), "AUTH_<id>"),
    (re.compile(r"(127\.0\.0\.1|localhost):\d+"), r"\1:<port>"),
    (re.compile(r"\b[0-9a-f]{16,}\b"), "<hex>"),
    (re.compile(r"\b0x[0-9a-f]+\b"), "0x<addr>"),
    (re.compile(r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d \w{3} \d{4} [\d:]{8} GMT"),
     "<http-date>"),
    (re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?"), "<iso-date>"),
    (re.compile(r"\b\d{10}(\.\d+)?\b"), "<timestamp>"),
    (re.compile(r"[^\x00-\x7f]{3,}"), "<utf8>"),
]


@dataclass
class TestResult:
    module: str
    cls: str
    name: str
    outcome: str
    message: str = ""
    detail: str = ""
    seconds: float = 0.0

    __test__ = False  # not a pytest test class

    @property
    def id(self) -> str:
        return "::".join(p for p in (f"{self.module}.py", self.cls, self.name) if p)

    @property
    def cause(self) -> str:
        return cause_of(self.message)


def cause_of(message: str) -> str:
    """The first line of ``message`` with volatile parts masked, at most CAUSE_WIDTH."""
    first = next((line.strip() for line in message.splitlines() if line.strip()), "")
    first = first or "(no message)"
    for pattern, replacement in _VOLATILE:
        first = pattern.sub(replacement, first)
    return first if len(first) <= CAUSE_WIDTH else first[:CAUSE_WIDTH - 1] + "…"


def _split_classname(classname: str, name: str) -> tuple[str, str]:
    """``test.functional.test_object.TestObject`` → (``test_object``, ``TestObject``)."""
    parts = [p for p in classname.split(".") if p]
    if "functional" in parts:
        parts = parts[parts.index("functional") + 1:]
    if not parts:  # a collection error: the module is in the name
        return name.rsplit(".", 1)[-1].removesuffix(".py"), ""
    return parts[0], ".".join(parts[1:])


def _outcome(case: ET.Element) -> tuple[str, str, str]:
    for tag, outcome in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
        element = case.find(tag)
        if element is not None:
            message = element.get("message") or ""
            text = (element.text or "").strip()
            detail = "\n".join(text.splitlines()[-DETAIL_LINES:]) if outcome != "skipped" else ""
            return outcome, message or text.split("\n", 1)[0], detail
    return "passed", "", ""


# which outcome a test keeps when pytest reports it twice (a failure, then an error in
# teardown): the test's own verdict first
_PRECEDENCE = {"failed": 0, "error": 1, "skipped": 2, "passed": 3}


def parse_junit(path: Path) -> list[TestResult]:
    """One TestResult per test of a pytest JUnit XML file (pytest writes a second
    ``<testcase>`` for a teardown error after a failure: the two are merged)."""
    results: dict[str, TestResult] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name", "")
        module, cls = _split_classname(case.get("classname", ""), name)
        outcome, message, detail = _outcome(case)
        result = TestResult(module=module, cls=cls, name=name, outcome=outcome,
                            message=message, detail=detail,
                            seconds=float(case.get("time") or 0.0))
        seen = results.get(result.id)
        if seen is None or _PRECEDENCE[outcome] < _PRECEDENCE[seen.outcome]:
            results[result.id] = result
    return list(results.values())


_LOG_LINE = re.compile(r"^test/functional/(\w+)\.py::(\w+)::(\S+) "
                       r"(PASSED|FAILED|SKIPPED|ERROR)\b", re.MULTILINE)


def parse_log(path: Path) -> list[TestResult]:
    """Outcomes (without messages) from a ``pytest -v`` log: the fallback for a run that
    was stopped before it wrote its JUnit XML. A test that failed and then errored in
    teardown prints two lines; the first wins."""
    results: dict[str, TestResult] = {}
    for module, cls, name, word in _LOG_LINE.findall(path.read_text(errors="replace")):
        outcome = {"PASSED": "passed", "FAILED": "failed", "SKIPPED": "skipped"}.get(
            word, "error")
        result = TestResult(module=module, cls=cls, name=name, outcome=outcome,
                            message="(outcome from the log: the run did not finish)")
        results.setdefault(result.id, result)
    return list(results.values())


@dataclass
class Group:
    cause: str
    tests: list[str] = field(default_factory=list)
    modules: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"cause": self.cause, "count": len(self.tests),
                "outcomes": dict(self.outcomes), "modules": dict(self.modules.most_common()),
                "tests": self.tests}


def group(results: Iterable[TestResult], outcomes: tuple[str, ...]) -> list[Group]:
    """Results with one of ``outcomes``, grouped by cause, largest group first."""
    groups: dict[str, Group] = {}
    for result in results:
        if result.outcome in outcomes:
            entry = groups.setdefault(result.cause, Group(result.cause))
            entry.tests.append(result.id)
            entry.modules[result.module] += 1
            entry.outcomes[result.outcome] += 1
    return sorted(groups.values(), key=lambda g: (-len(g.tests), g.cause))


def totals(results: Iterable[TestResult]) -> dict[str, int]:
    counts = Counter(r.outcome for r in results)
    return {"tests": sum(counts.values()), **{o: counts[o] for o in OUTCOMES}}


def by_module(results: Iterable[TestResult]) -> dict[str, dict[str, int]]:
    modules: dict[str, list[TestResult]] = {}
    for result in results:
        modules.setdefault(result.module, []).append(result)
    return {name: totals(items) for name, items in sorted(modules.items())}


@dataclass
class Report:
    """Everything ``results.json`` holds; ``meta`` is the run's context (versions, times,
    slots, /info, harness problems)."""

    results: list[TestResult]
    meta: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {**self.meta, "totals": totals(self.results),
                "by_module": by_module(self.results),
                "failure_groups": [g.as_dict() for g in group(self.results,
                                                              ("failed", "error"))],
                "skip_groups": [g.as_dict() for g in group(self.results, ("skipped",))],
                "tests": [{"id": r.id, **asdict(r)} for r in self.results]}

    def write(self, work: Path) -> tuple[Path, Path]:
        data = self.as_dict()
        json_path, md_path = work / "results.json", work / "summary.md"
        json_path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
        md_path.write_text(markdown(data))
        return json_path, md_path
