"""Unit tests of the harness's pure parts (no cloud, no Swift): ``pytest tests/conformance``."""

from __future__ import annotations

import configparser
import sys
import time
from pathlib import Path

import pytest
from tests.conformance import accounts, slots, summary
from tests.conformance.results import (
    Report,
    cause_of,
    group,
    parse_junit,
    parse_log,
    totals,
)
from tests.conformance.run import parse_args

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="5">
 <testcase classname="test.functional.test_object.TestObject" name="test_put" time="0.5"/>
 <testcase classname="test.functional.test_object.TestObject" name="test_copy" time="0.1">
  <failure message="AssertionError: 404 != 201 for /v1/AUTH_9f3c/c9b1e0f6a1d24e2f8d7c6b5a4f3e2d1c">
Traceback...
AssertionError: 404 != 201</failure></testcase>
 <testcase classname="test.functional.test_object.TestObject" name="test_move" time="0.1">
  <failure message="AssertionError: 404 != 201 for /v1/AUTH_0e1d/0123456789abcdef0123">x</failure>
 </testcase>
 <testcase classname="test.functional.test_object.TestObject" name="test_move" time="0.1">
  <error message="failed on teardown with &quot;ResponseError: 500&quot;">x</error>
 </testcase>
 <testcase classname="test.functional.tests.TestAccount" name="testHead" time="0">
  <error message="failed on setup with &quot;ResponseError: 500: 'Internal Server Error'&quot;">
tb</error></testcase>
 <testcase classname="test.functional.test_slo.TestSlo" name="test_slo" time="0">
  <skipped type="pytest.skip" message="SLO not enabled">skip</skipped></testcase>
 <testcase classname="" name="test.functional.test_dlo" time="0">
  <error message="collection failure">ImportError</error></testcase>
</testsuite></testsuites>
"""


@pytest.fixture
def junit(tmp_path: Path) -> Path:
    path = tmp_path / "test_object.xml"
    path.write_text(JUNIT)
    return path


def test_parse_junit_one_outcome_per_test(junit: Path) -> None:
    results = parse_junit(junit)
    assert [(r.module, r.cls, r.name, r.outcome) for r in results] == [
        ("test_object", "TestObject", "test_put", "passed"),
        ("test_object", "TestObject", "test_copy", "failed"),
        ("test_object", "TestObject", "test_move", "failed"),
        ("tests", "TestAccount", "testHead", "error"),
        ("test_slo", "TestSlo", "test_slo", "skipped"),
        ("test_dlo", "", "test.functional.test_dlo", "error"),
    ]
    assert totals(results) == {"tests": 6, "passed": 1, "failed": 2, "error": 2, "skipped": 1}
    assert results[1].id == "test_object.py::TestObject::test_copy"


def test_failures_with_random_names_group_as_one_cause(junit: Path) -> None:
    groups = group(parse_junit(junit), ("failed", "error"))
    assert groups[0].cause == "AssertionError: 404 != 201 for /v1/AUTH_<id>/<hex>"
    assert len(groups[0].tests) == 2
    assert {g.cause for g in groups[1:]} == {
        "collection failure",
        "failed on setup with \"ResponseError: 500: 'Internal Server Error'\""}


@pytest.mark.parametrize(("message", "cause"), [
    ("", "(no message)"),
    ("\n  first line  \nsecond", "first line"),
    ("txid=tx9b278673a5faa44279dbc-006b0608e9", "txid=<txid>"),
    ("at 127.0.0.1:34623 on 1764021234.12345", "at 127.0.0.1:<port> on <timestamp>"),
    ("x" * 500, "x" * 179 + "…"),
    ("'Tue, 24 Nov 2026 22:41:21 GMT' == 'Tue, 24 Nov 2026 22:41:21 GMT'",
     "'<http-date>' == '<http-date>'"),
    ("last_modified 2026-11-24T22:41:21.123450 !=", "last_modified <iso-date> !="),
])
def test_cause_of(message: str, cause: str) -> None:
    assert cause_of(message) == cause


def test_report_writes_json_and_markdown(junit: Path, tmp_path: Path) -> None:
    report = Report(results=parse_junit(junit),
                    meta={"swift_version": "2.38.3", "auth_version": "3",
                          "harness_problems": [], "duration_s": 75})
    json_path, md_path = report.write(tmp_path)
    text = md_path.read_text()
    assert "1 passed, 2 failed, 1 skipped, 2 errors (of 6)" in text
    assert "| test_object | 3 | 1 | 2 | 0 | 0 |" in text
    assert "1m15s" in text
    assert '"failure_groups"' in json_path.read_text()
    assert summary.terminal(report.as_dict()).endswith(
        "conformance: 1 passed, 2 failed, 1 skipped, 2 errors (of 6)")


def _modules(tmp_path: Path, sizes: dict[str, int]) -> dict[str, Path]:
    modules = {}
    for name, size in sizes.items():
        modules[name] = tmp_path / f"{name}.py"
        modules[name].write_text("#" * size)
    return modules


def test_queue_puts_access_control_first_then_largest(tmp_path: Path) -> None:
    modules = _modules(tmp_path, {"tests": 100, "test_object": 60, "test_slo": 60,
                                  "test_access_control": 10, "test_dlo": 5})
    assert slots.queue_order(modules) == ["test_access_control", "tests", "test_object",
                                          "test_slo", "test_dlo"]


def _runner(tmp_path: Path, queue: list[str], slot_count: int,
            script: str = "pass") -> slots.Runner:
    confs = [tmp_path / f"slot{i}.conf" for i in range(slot_count)]
    return slots.Runner(queue=queue, confs=confs, cwd=tmp_path, out=tmp_path,
                        command=lambda run: [sys.executable, "-c", script])


def test_runner_gives_access_control_to_slot_0_only(tmp_path: Path) -> None:
    runner = _runner(tmp_path, ["tests", "test_access_control", "test_dlo"], 2,
                     "import time; time.sleep(0.3)")
    runner.fill()
    assert {(r.module, r.slot) for r in runner.runs} == {("tests", 0), ("test_dlo", 1)}
    assert runner.wait(deadline=time.monotonic() + 30, report=lambda r: None)
    assert [(r.module, r.slot) for r in runner.runs][-1] == ("test_access_control", 0)
    assert all(r.exit_code == 0 and r.ended is not None for r in runner.runs)


def test_runner_stops_at_the_deadline(tmp_path: Path) -> None:
    runner = _runner(tmp_path, ["a", "b"], 1, "import time; time.sleep(30)")
    assert not runner.wait(deadline=time.monotonic() + 0.5, report=lambda r: None)
    assert runner.queue == ["b"]
    assert runner.runs[0].exit_code not in (0, None)
    assert runner.runs[0].seconds < 15


def test_select_modules(tmp_path: Path) -> None:
    modules = _modules(tmp_path, {"tests": 1, "test_object": 1})
    assert slots.select(modules, []) == modules
    assert list(slots.select(modules, ["test_object.py"])) == ["test_object"]
    with pytest.raises(ValueError, match="unknown test module"):
        slots.select(modules, ["test_nope"])


def test_progress_counts_only_verbose_outcome_lines(tmp_path: Path) -> None:
    log = tmp_path / "tests.log"
    log.write_text("test/functional/tests.py::TestA::test_x PASSED   [ 1%]\n"
                   "test/functional/tests.py::TestA::test_y ERROR    [ 2%]\n"
                   "____ ERROR at setup of TestA.test_y ____\n"
                   "FAILED test/functional/tests.py::TestA::test_z - AssertionError\n")
    run = slots.ModuleRun(module="tests", slot=0, junit=log, log=log)
    assert run.outcomes_so_far() == 2
    assert [(r.id, r.outcome) for r in parse_log(log)] == [
        ("tests.py::TestA::test_x", "passed"), ("tests.py::TestA::test_y", "error")]


def test_slot_users_are_distinct_per_slot_and_literal_on_slot_0() -> None:
    first, second = accounts.slot_users(0), accounts.slot_users(1)
    assert [u.name for u in first] == ["tester", "tester2", "tester3", "tester4", "tester5",
                                       "tester6"]
    assert {u.project for u in first} == {"test", "test2", "test4", "test5"}
    assert not {u.name for u in first} & {u.name for u in second}
    assert not {u.project for u in first} & {u.project for u in second}


def test_test_conf_has_what_setup_package_reads() -> None:
    text = accounts.render_test_conf(accounts.slot_users(0), auth_version="3",
                                     identity_url="http://127.0.0.1:1",
                                     objectstore_url="http://127.0.0.1:2")
    parser = configparser.ConfigParser()
    parser.read_string(text)
    conf = parser["func_test"]
    assert conf["auth_uri"] == "http://127.0.0.1:1/v3/"
    assert (conf["account"], conf["username"], conf["domain"]) == ("test", "tester", "Default")
    assert (conf["account4"], conf["domain4"]) == ("test4", "test-domain")
    assert conf["username3"] == "tester3" and "account3" not in conf
    assert (conf["account6"], conf["username6"]) == ("test", "tester6")
    assert conf["service_prefix"] == "SERVICE"
    v1 = accounts.render_test_conf(accounts.slot_users(0), auth_version="1",
                                   identity_url="http://127.0.0.1:1",
                                   objectstore_url="http://127.0.0.1:2")
    assert "auth_uri = http://127.0.0.1:2/auth/v1.0" in v1


def test_parse_args_forwards_pytest_options() -> None:
    args, extra = parse_args(["test_object", "-k", "copy and not slo", "-x", "--parallel", "1",
                              "--", "--maxfail", "3"])
    assert args.modules == ["test_object"]
    assert args.parallel == 1
    assert extra == ["-x", "--maxfail", "3", "-k", "copy and not slo"]
