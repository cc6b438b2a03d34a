"""bench.ab: the alternation, the medians and comparison, the report, the arguments."""

from __future__ import annotations

import pytest
from bench.ab import Sample, compare, median, parse_args, rate, report, sides_in_round


def samples(side: str, cpu: list[float], rate: list[float]) -> list[Sample]:
    return [Sample("GET", side, n + 1, (side == "base") == (n % 2 == 0), rate[n], cpu[n],
                   cpu[n] * 0.6, cpu[n] * 0.4)
            for n in range(len(cpu))]


def test_the_side_that_goes_first_alternates() -> None:
    assert [sides_in_round(n) for n in (1, 2, 3)] == [
        ["base", "new"], ["new", "base"], ["base", "new"]]


def test_median_skips_what_was_not_measured() -> None:
    assert median([3.0, None, 1.0, 2.0]) == 2.0
    assert median([None]) is None


def test_comparison_of_medians_and_rounds() -> None:
    base = samples("base", [0.30, 0.32, 0.31], [3000, 2900, 2950])
    new = samples("new", [0.27, 0.33, 0.28], [3200, 2800, 3100])
    assert compare(base, new, "cpu_ms") == "cpu_ms -9.7% (new lower in 2 of 3)"
    assert compare(base, new, "ops_per_s") == "ops_per_s +5.1% (new lower in 1 of 3)"
    assert compare(base, new, "calls") == "calls: -"


def test_report_shows_every_round_the_medians_and_errors() -> None:
    base = samples("base", [0.30, 0.32], [3000, 2900])
    new = samples("new", [0.27, 0.33], [3200, 2800])
    new[1].errors, new[1].first_error = 2, "VerifyError: GET o000001: body MD5 differs"
    text = report("GET", base, new, calls=False)
    lines = text.splitlines()
    assert lines[0] == "GET"
    assert lines[3].split() == ["1", "base", "3000", "0.300", "0.180", "0.120", "|",
                                "3200", "0.270", "0.162", "0.108"]
    assert lines[4].split()[:2] == ["2", "new"]
    assert lines[5].split()[:3] == ["median", "2950", "0.310"]
    assert "cpu_ms -3.2% (new lower in 1 of 2)" in text
    assert "2 errors, the first: VerifyError: GET o000001" in text


def test_few_operations_per_second_keep_a_decimal() -> None:
    assert (rate(7.46), rate(99.94), rate(3212.4)) == ("7.5", "99.9", "3212")
    large = [Sample("GET-LARGE", "base", 1, True, 6.8, 121.3)]
    assert report("GET-LARGE", large, large, calls=False).splitlines()[3].split()[2:4] == [
        "6.8", "121.300"]


def test_report_of_calls() -> None:
    base = [Sample("HEAD", "base", 1, True, 0.0, None, calls=350.3)]
    new = [Sample("HEAD", "new", 1, False, 0.0, None, calls=340.7)]
    text = report("HEAD", base, new, calls=True)
    assert "350.3 |        340.7" in text
    assert "calls -2.7% (new lower in 1 of 1)" in text


def test_arguments() -> None:
    args = parse_args(["--ops", "get, head", "--rounds", "2"])
    assert args.ops == ["GET", "HEAD"] and args.base == "HEAD" and args.rounds == 2
    args = parse_args(["--ops", "get-large", "--large-mib", "8"])
    assert args.ops == ["GET-LARGE"] and args.large_mib == 8 and args.large_count == 32
    for bad in (["--ops", "GET,LIST"], ["--ops", "DELETE"], ["--ops", ""],
                ["--ops", "PUT", "--count", "10", "--objects", "20"], ["--rounds", "0"],
                ["--ops", "GET-LARGE", "--large-mib", "0"]):
        with pytest.raises(SystemExit):
            parse_args(bad)
