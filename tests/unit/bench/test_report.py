"""bench.report: ratios, targets and fractions of the machine's limits."""

from __future__ import annotations

import json

from bench.ceilings import DiskCeiling
from bench.report import (
    PS,
    UP,
    Run,
    ceilings_table,
    fraction_of_limit,
    json_lines,
    startup_table,
    table,
    verdict,
)
from bench.runner import Result


def result(cloud: str, name: str, ops: int, seconds: float, cpu: float, *,
           moved: int = 0, errors: int = 0) -> Result:
    return Result(name, ops, seconds, 1.0, 2.0, errors, moved, cloud, cpu, 0.1)


def pooled_run(*results: Result) -> Run:
    run = Run(disk=DiskCeiling(200, 3000, 16, 300.0), bcrypt_ms=240.0)
    for r in results:
        run.add(r)
        run.pooled[(r.cloud, r.name)] = r
    return run


def test_small_objects_need_ten_times_the_rate_and_a_tenth_of_the_cpu() -> None:
    fast_but_costly = pooled_run(result(PS, "GET 4 KiB", 1000, 1, 2.0),
                                 result(UP, "GET 4 KiB", 100, 1, 10.0))
    assert verdict(fast_but_costly, "GET 4 KiB").ok is False
    both = pooled_run(result(PS, "GET 4 KiB", 1000, 1, 1.0),
                      result(UP, "GET 4 KiB", 100, 1, 10.0))
    assert verdict(both, "GET 4 KiB").ok is True
    assert "10.00x" in table(both)


def test_errors_leave_the_ratio_undecided() -> None:
    run = pooled_run(result(PS, "token validate", 1000, 1, 0.3, errors=1),
                     result(UP, "token validate", 10, 1, 10.0))
    assert verdict(run, "token validate").ok is None
    assert "ERRORS 1" in table(run)


def test_password_issue_is_judged_by_cpu_beyond_the_hash() -> None:
    run = pooled_run(result(PS, "token issue (password)", 10, 2, 242.5))
    v = verdict(run, "token issue (password)")
    assert v.ok is True and "(2.5)" in v.target


def test_the_overhead_is_decided_where_the_hash_is_cheap() -> None:
    """With the low-rounds cloud in the run, its row decides; the 12-round figure is shown
    without a verdict (a check's own cost there moves by more than 3 ms)."""
    low = "token issue (password, 4 rounds)"
    run = pooled_run(result(PS, "token issue (password)", 10, 2, 245.0),
                     result(PS, low, 400, 2, 2.2))
    run.bcrypt_ms_overhead_rounds = 1.0
    v = verdict(run, low)
    assert v.ok is True and "(1.2)" in v.target
    twelve = verdict(run, "token issue (password)")
    assert twelve.ok is None and "5.0 ms" in twelve.target
    run.pooled[(PS, low)] = result(PS, low, 400, 2, 4.2)
    assert verdict(run, low).ok is False
    assert "overhead cloud's rounds, in the client, 2 at once: 1.00 ms" in ceilings_table(run)


def test_large_put_against_a_third_of_the_sequential_disk() -> None:
    mib64 = 64 * 1024 * 1024
    run = pooled_run(result(PS, "PUT 64 MiB (streamed)", 2, 1, 500.0, moved=2 * mib64))
    assert verdict(run, "PUT 64 MiB (streamed)").ok is True  # 134 MB/s >= 0.8 * 100
    assert fraction_of_limit(run, "PUT 64 MiB (streamed)") == "134% seq/3"
    small = pooled_run(result(PS, "PUT 4 KiB", 100, 1, 4.0))
    assert fraction_of_limit(small, "PUT 4 KiB") == "10% fsync"  # 3 * 100 / 3000


def test_another_pocketstack_configuration_gets_rows_and_a_column_of_its_own() -> None:
    workers = f"{PS} --workers 2"
    run = pooled_run(result(PS, "GET 4 KiB", 600, 1, 1.0), result(PS, "token validate", 9, 1, 1),
                     result(UP, "GET 4 KiB", 100, 1, 10.0),
                     result(workers, "GET 4 KiB", 1000, 1, 0.9))
    run.memory = {PS: {"idle_rss_mb": 90}, UP: {"idle_rss_mb": 900},
                  workers: {"idle_rss_mb": 230}}
    assert run.pocketstacks() == [PS, workers]
    assert verdict(run, "GET 4 KiB").ok is False
    assert verdict(run, "GET 4 KiB", workers).ok is True
    lines = table(run).splitlines()
    row = next(line for line in lines if line.startswith("GET 4 KiB, --workers 2"))
    assert "10.00x" in row and row.rstrip().endswith("PASS")
    assert not any(line.startswith("token validate, --workers") for line in lines)
    startup = startup_table(run).splitlines()
    assert startup[0].split() == [PS, UP, "--workers", "2", "target"]
    rss = next(line for line in startup if line.startswith("idle RSS"))
    assert rss.split()[3:] == ["90", "900", "230", "<", "150", "MB", "PASS"]
    startups = [json.loads(line) for line in json_lines(run) if '"startup"' in line]
    assert [(s["cloud"], s["first"], s["memory"]["idle_rss_mb"]) for s in startups] == [
        (PS, {}, 90), (UP, {}, 900), (workers, {}, 230)]
