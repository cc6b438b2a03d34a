"""``make conformance``: run Swift's functional tests against a fresh ``pocketstack up``.

    python -m tests.conformance.run [MODULE ...] [-k EXPR] [--parallel N] [--timeout S]
                                    [--swift-version V] [--auth-version 3|1] [-- PYTEST ARGS]

Steps: the Swift sdist and the conformance venv (``swiftsrc``) → a cloud in a temp dir
(``cloud``) → test users and ``test.conf`` per slot (``accounts``) → one pytest per
module, N at once (``slots``) → ``results.json``, ``summary.md`` and a terminal summary
(``results``, ``summary``).

Exit status: 0 when the suite ran (whatever the number of failures: the number is the
result); 1 when it ran but something outside the tests went wrong on the way (a module
crashed or timed out, the cloud died): numbers are partial; 2 when the harness could not
produce numbers at all (no sdist, venv failed, cloud did not start, provisioning failed);
130 when interrupted. The cloud is stopped and the temp dir removed in every case.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
from tests.conformance import accounts, slots, summary, swiftsrc
from tests.conformance import cloud as cloudmod
from tests.conformance.errors import HarnessError
from tests.conformance.results import Report, TestResult, parse_junit, parse_log

REPO = Path(__file__).resolve().parents[2]
DEFAULT_PARALLEL = 2
DEFAULT_TEST_TIMEOUT = 300
DEFAULT_TOTAL_TIMEOUT = 3 * 3600


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="make conformance ARGS=...", description=__doc__.split("\n\n")[0],
        epilog="Unknown options (e.g. -x, --maxfail=5) and anything after -- go to pytest.")
    parser.add_argument("modules", nargs="*", help="test modules to run, e.g. test_object "
                        "tests (default: all of test/functional but s3api)")
    parser.add_argument("-k", dest="keyword", help="pytest -k expression")
    parser.add_argument("--parallel", type=int,
                        default=int(os.environ.get("CONFORMANCE_PARALLEL", DEFAULT_PARALLEL)),
                        help="modules run at once, each slot with its own accounts "
                        f"(default {DEFAULT_PARALLEL}, env CONFORMANCE_PARALLEL)")
    parser.add_argument("--timeout", type=int, default=DEFAULT_TEST_TIMEOUT,
                        help=f"per-test timeout in seconds (default {DEFAULT_TEST_TIMEOUT})")
    parser.add_argument("--total-timeout", type=int, default=DEFAULT_TOTAL_TIMEOUT,
                        help="stop the suite after this many seconds")
    parser.add_argument("--swift-version",
                        default=os.environ.get("CONFORMANCE_SWIFT_VERSION")
                        or swiftsrc.DEFAULT_SWIFT_VERSION,
                        help=f"swift sdist to test (default {swiftsrc.DEFAULT_SWIFT_VERSION}, "
                        "env CONFORMANCE_SWIFT_VERSION; 'latest': PyPI's newest)")
    parser.add_argument("--auth-version", choices=("3", "1"), default="3",
                        help="3: keystone v3 tokens (default); 1: Swift's /auth/v1.0")
    parser.add_argument("--work", type=Path, default=REPO / ".conformance",
                        help="cache, venv and results (default .conformance/)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temp dir (data dir, test.conf) for debugging")
    argv = list(sys.argv[1:] if argv is None else argv)
    tail = argv[argv.index("--") + 1:] if "--" in argv else []
    head = argv[:argv.index("--")] if "--" in argv else argv
    args, unknown = parser.parse_known_args(head)
    extra = [*unknown, *tail] + (["-k", args.keyword] if args.keyword else [])
    return args, extra


def say(message: str) -> None:
    print(f"conformance: {message}", flush=True)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args, extra = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    args.work.mkdir(parents=True, exist_ok=True)
    try:
        report = conform(args, extra)
    except HarnessError as exc:
        say(f"HARNESS ERROR: {exc}")
        if exc.detail:
            print(exc.detail, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        say("interrupted (cloud stopped, temp dir removed)")
        return 130
    data = report.as_dict()
    json_path, md_path = report.write(args.work)
    print(summary.terminal(data))
    say(f"details: {json_path}, {md_path}, logs in {args.work / 'logs'}")
    return 1 if data["harness_problems"] else 0


def conform(args: argparse.Namespace, extra: list[str]) -> Report:
    started = time.time()
    source = swiftsrc.prepare_source(args.work, args.swift_version)
    venv = swiftsrc.ensure_venv(args.work, source)
    try:
        modules = slots.select(slots.discover(source), args.modules)
    except ValueError as exc:
        raise HarnessError(str(exc)) from exc
    order = slots.queue_order(modules)
    slot_count = max(1, min(args.parallel, len(order)))
    say(f"Swift {source.version} test/functional: {len(order)} module(s), "
        f"{slot_count} in parallel: {' '.join(order)}")
    meta: dict[str, Any] = {
        "swift_version": source.version, "auth_version": args.auth_version,
        "commit": _commit(), "started": _iso(started), "parallel": slot_count,
        "filters": [*args.modules, *extra], "harness_problems": []}
    base = Path(tempfile.mkdtemp(prefix="pocketstack-conformance-"))
    try:
        run_against_cloud(args, extra, source, venv, order, slot_count, base, meta)
    finally:
        if args.keep:
            say(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    meta["finished"] = _iso(time.time())
    meta["duration_s"] = round(time.time() - started)
    return Report(results=collect(meta), meta=meta)


def run_against_cloud(args: argparse.Namespace, extra: list[str],
                      source: swiftsrc.SwiftSource, venv: swiftsrc.Venv, order: list[str],
                      slot_count: int, base: Path, meta: dict[str, Any]) -> None:
    """Start the cloud, provision, run the modules; the cloud is stopped and its log kept
    whatever happens."""
    logs = args.work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    cloud = None
    try:
        say("starting pocketstack up ...")
        cloud = cloudmod.start(base)
        say(f"cloud up: identity {cloud.identity_url}, object storage {cloud.objectstore_url}")
        confs = provision(cloud, slot_count, args.auth_version, base)
        meta["info"] = preflight(cloud, args.work)
        run_modules(args, extra, source, venv, order, confs, meta)
        if cloud.process is not None and cloud.process.poll() is not None:
            meta["harness_problems"].append(
                f"pocketstack up exited with {cloud.process.returncode} during the run "
                "(see logs/server.log)")
    finally:
        if cloud is not None:
            meta["server_exit"] = cloudmod.stop(cloud)
            if cloud.log_path.exists():
                shutil.copyfile(cloud.log_path, logs / "server.log")


def provision(cloud: cloudmod.Cloud, slot_count: int, auth_version: str,
              base: Path) -> list[Path]:
    """The users of every slot, checked by logging each in; one test.conf per slot."""
    keystone = accounts.Keystone(f"{cloud.identity_url}/v3", cloud.admin_auth())
    confs = []
    try:
        for slot in range(slot_count):
            users = accounts.slot_users(slot)
            accounts.provision(keystone, users)
            for user in users:
                accounts.storage_url(keystone, user)  # raises unless the user can log in
            conf = base / f"test-slot{slot}.conf"
            conf.write_text(accounts.render_test_conf(
                users, auth_version=auth_version, identity_url=cloud.identity_url,
                objectstore_url=cloud.objectstore_url))
            confs.append(conf)
        first = accounts.slot_users(0)[0]
        url, token = accounts.storage_url(keystone, first)
    finally:
        keystone.close()
    say(f"created {slot_count}×6 test users with their projects and roles; all can log in")
    _probe(f"HEAD {first.name}'s account {url}", url, {"X-Auth-Token": token})
    if auth_version == "1":
        _probe(f"GET /auth/v1.0 as {first.project}:{first.name}",
               f"{cloud.objectstore_url}/auth/v1.0",
               {"X-Auth-User": f"{first.project}:{first.name}", "X-Auth-Key": first.password},
               method="GET")
    return confs


def _probe(what: str, url: str, headers: dict[str, str], method: str = "HEAD") -> int | None:
    """One request that tells, before the suite runs, whether object storage answers."""
    try:
        status = httpx.request(method, url, headers=headers, timeout=30).status_code
    except httpx.HTTPError as exc:
        say(f"WARNING: {what}: {exc!r}: expect the object storage tests to fail")
        return None
    note = "" if status < 500 else ": expect the object storage tests to fail (server side)"
    say(f"{what} → {status}{note}")
    return status


def preflight(cloud: cloudmod.Cloud, work: Path) -> dict[str, Any]:
    """``GET /info`` (saved to info.json: what the suite will try and what it skips)."""
    try:
        response = httpx.get(f"{cloud.objectstore_url}/info", timeout=30)
        info = response.json() if response.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        info = {}
    (work / "info.json").write_text(json.dumps(info, indent=1) + "\n")
    if info:
        say(f"GET /info advertises: {', '.join(sorted(info))}")
    else:
        say("WARNING: GET /info gave nothing: the suite falls back to default constraints")
    return info


def run_modules(args: argparse.Namespace, extra: list[str], source: swiftsrc.SwiftSource,
                venv: swiftsrc.Venv, order: list[str], confs: list[Path],
                meta: dict[str, Any]) -> None:
    """Every module through a ``slots.Runner`` with one slot per test.conf."""
    for stale in [*(args.work / "junit").glob("*.xml"), *(args.work / "logs").glob("test*")]:
        stale.unlink()
    runner = slots.Runner(
        queue=list(order), confs=confs, cwd=source.tree, out=args.work,
        command=lambda run: slots.pytest_command(venv, source, run, timeout=args.timeout,
                                                  extra=extra))
    say(f"running {len(order)} module(s) in {len(confs)} slot(s); logs in "
        f"{args.work / 'logs'}")
    try:
        finished = runner.wait(deadline=time.monotonic() + args.total_timeout,
                               report=_progress)
        if not finished:
            meta["harness_problems"].append(
                f"suite stopped after --total-timeout {args.total_timeout}s; never started: "
                f"{' '.join(runner.queue) or '-'}")
    finally:
        runner.terminate()
    meta["runs"] = [_run_meta(run, meta) for run in runner.runs]


def _progress(runner: slots.Runner) -> None:
    done = sum(run.outcomes_so_far() for run in runner.runs)
    minutes = (time.monotonic() - min(run.started for run in runner.runs)) / 60
    busy = " ".join(run.module for run in runner.runs if run.running)
    say(f"{minutes:.0f} min: {done} tests done; running {busy or '-'}; "
        f"{len(runner.queue)} module(s) queued")


def _run_meta(run: slots.ModuleRun, meta: dict[str, Any]) -> dict[str, Any]:
    code = run.exit_code
    if code not in (0, 1, 5):  # pytest: 0 ok, 1 tests failed, 5 nothing selected
        meta["harness_problems"].append(f"{run.module}: pytest exited with {code} "
                                        f"(see {run.log})")
    return {"module": run.module, "slot": run.slot, "exit": code,
            "seconds": round(run.seconds),
            "junit": str(run.junit), "log": str(run.log)}


def collect(meta: dict[str, Any]) -> list[TestResult]:
    """Every module's outcomes: its JUnit XML, else (stopped run) what its log shows."""
    results: list[TestResult] = []
    for run in meta.get("runs", []):
        try:
            results += parse_junit(Path(run["junit"]))
        except (OSError, ET.ParseError) as exc:  # missing or truncated: the run was stopped
            partial = parse_log(Path(run["log"])) if Path(run["log"]).exists() else []
            results += partial
            meta["harness_problems"].append(
                f"{run['module']} wrote no JUnit XML ({exc}); {len(partial)} outcomes "
                "taken from its log, its other tests did not run")
    return sorted(results, key=lambda r: (r.module, r.cls, r.name))


def _commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, text=True,
                              capture_output=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO, text=True, capture_output=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{'+dirty' if dirty.strip() else ''}" if head else "unknown"


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


if __name__ == "__main__":
    sys.exit(main())
