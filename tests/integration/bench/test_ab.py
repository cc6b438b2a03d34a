"""bench.ab end to end: two real servers (the work tree and a git ref), every operation,
timed and then counted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
# bench.ab checks out a git ref beside the work tree: a copy of the sources without the
# repository (an unpacked archive) has none to check out
NEEDS_GIT = pytest.mark.skipif(not (REPO / ".git").exists(), reason="needs the git repository")


def ab(tmp_path: Path, *extra: str) -> tuple[str, list[dict[str, object]]]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.ab", "--rounds", "2", "--count", "24", "--objects", "6",
         "--warmup", "12", "--concurrency", "4", "--work", str(tmp_path / "ab"), *extra],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [json.loads(line) for line in (tmp_path / "ab" / "results.jsonl").open()]
    return done.stdout, rows


@NEEDS_GIT
def test_every_operation_is_timed_on_both_sides_in_alternation(tmp_path: Path) -> None:
    out, rows = ab(tmp_path, "--ops", "PUT,GET,HEAD,DELETE,GET-LARGE", "--large-objects", "2",
                   "--large-mib", "2", "--large-count", "4")
    for op in ("PUT", "GET", "HEAD", "DELETE", "GET-LARGE"):
        assert f"\n{op}\n" in f"\n{out}"
        mine = [r for r in rows if r["op"] == op]
        assert sorted((r["side"], r["round"]) for r in mine) == [
            ("base", 1), ("base", 2), ("new", 1), ("new", 2)]
        for row in mine:
            assert row["errors"] == 0 and row["ops_per_s"] > 0 and row["cpu_ms"] is not None
            assert row["loop_ms"] is not None and row["calls"] is None
            assert row["first"] == ((row["side"] == "base") == (row["round"] == 1))
    assert "cpu_ms " in out and "new lower in" in out
    assert not (tmp_path / "ab" / "base-data").exists()  # the data dirs are removed
    assert not (tmp_path / "ab" / "base-tree").exists()  # and the base's checkout


@NEEDS_GIT
def test_calls_are_counted_per_operation(tmp_path: Path) -> None:
    out, rows = ab(tmp_path, "--ops", "GET,HEAD", "--calls")
    assert {r["op"] for r in rows} == {"GET", "HEAD"}
    for row in rows:
        assert isinstance(row["calls"], float) and 100 < row["calls"] < 5000
    assert "calls/op" in out
