"""A/B of two source trees on object requests: ``python -m bench.ab`` (``make ab``).

A single change to the request path is worth a few percent of a request's CPU. Two runs
of the same code on a shared machine differ by more than that (docs/performance.md,
"Tried on 2026-11-25 and not kept"). So this tool runs ``pocketstack up`` from two trees
in turn, with the same payloads, the same client and the same kind of data dir, and
alternates which tree goes first in each round. It reports every round and the medians,
so that only a difference that holds round after round is believed.

- ``base`` is a git ref (``--base``, default ``HEAD``), checked out into a temporary
  worktree that is removed at the end;
- ``new`` is this work tree's ``src/``, uncommitted changes included.

Each side gets its own data dir and is restarted for every round (a fresh process, warmed
up by ``--warmup`` GETs). For each operation and side the tool reports ops/s and the
server's CPU per operation. A single-process server also shows that CPU split between its
main thread (the event loop) and the other threads (storage pools, background tasks).
With ``--calls`` the servers count their Python function calls per operation instead
(`bench/callcount`). The count is deterministic, but counting makes a server several
times slower, so that pass shows no rates.

    python -m bench.ab [--base REF] [--rounds 3] [--ops GET,HEAD] [--count 8000]
                       [--objects 200] [--concurrency 16] [--calls] [--ps-arg=ARG ...]
                       [--large-objects 16] [--large-mib 64] [--large-count 32]

GET and HEAD read ``--objects`` objects of 4 KiB round-robin. PUT writes ``--count`` new
ones, and DELETE (only with PUT) removes them again in the same round. GET-LARGE reads
``--large-count`` times, round-robin, ``--large-objects`` objects of ``--large-mib`` MiB
(streamed, as ``make bench`` does; written in the first round). Every body and ETag is
checked, as in ``make bench``. A round that starts with PUT is not warmed up.
Results go to ``.bench/ab-<time>/results.jsonl`` (``--work``), the servers' output to
``pocketstack.log`` beside it; the data dirs are removed at the end (``--keep``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.clouds import PocketstackCloud, login
from bench.objects import MiB, ObjectBench, Payloads, Target, Workload, put_container, session
from bench.procstat import thread_cpu_seconds
from bench.runner import Operation, measure, run

REPO = Path(__file__).resolve().parent.parent
CALLCOUNT_HOOK = REPO / "bench" / "callcount"
ORDER = ("PUT", "GET", "HEAD", "DELETE", "GET-LARGE")
CONTAINER, LARGE_CONTAINER = "ab", "ab-large"


@dataclass
class Sample:
    """One operation of one side in one round."""

    op: str
    side: str
    round: int
    first: bool  # this side ran first in its round
    ops_per_s: float
    cpu_ms: float | None  # server processes, per operation
    loop_ms: float | None = None  # the first process's main thread (single process only)
    other_ms: float | None = None  # its other threads
    calls: float | None = None  # Python calls per operation (--calls)
    p50_ms: float = 0.0  # latency, as the client saw it
    p99_ms: float = 0.0
    errors: int = 0
    first_error: str = ""


@dataclass
class Side:
    name: str
    src: Path
    cloud: PocketstackCloud
    calls_file: Path | None = None
    samples: list[Sample] = field(default_factory=list)


def sides_in_round(round_number: int, names: Sequence[str] = ("base", "new")) -> list[str]:
    """Which side goes first alternates: base, new; then new, base; ..."""
    return list(names) if round_number % 2 else list(reversed(names))


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def compare(base: Sequence[Sample], new: Sequence[Sample], metric: str) -> str:
    """'new vs base' for one metric: the change of the medians, and in how many rounds
    new was lower (for CPU and calls, lower is better; for ops/s, higher)."""
    pairs = [(getattr(b, metric), getattr(n, metric)) for b, n in zip(base, new, strict=True)]
    pairs = [(b, n) for b, n in pairs if b is not None and n is not None]
    b_med, n_med = median([b for b, _ in pairs]), median([n for _, n in pairs])
    if not pairs or not b_med or n_med is None:
        return f"{metric}: -"
    change = (n_med / b_med - 1) * 100
    lower = sum(1 for b, n in pairs if n < b)
    return f"{metric} {change:+.1f}% (new lower in {lower} of {len(pairs)})"


def rate(ops_per_s: float) -> str:
    """Operations per second, with a decimal where they are few (large objects)."""
    return f"{ops_per_s:.1f}" if ops_per_s < 100 else f"{ops_per_s:.0f}"


def report(op: str, base: Sequence[Sample], new: Sequence[Sample], calls: bool) -> str:
    """One operation's rounds side by side, their medians, and the comparison."""
    def cells(s: Sample) -> str:
        if calls:
            return f"{s.calls or 0:>12.1f}"
        split = "" if s.loop_ms is None else f"{s.loop_ms:>8.3f}{s.other_ms or 0:>8.3f}"
        return f"{rate(s.ops_per_s):>9}{s.cpu_ms or 0:>8.3f}{split:>16}"

    head = f"{'calls/op':>12}" if calls else f"{'ops/s':>9}{'CPU ms':>8}{'loop':>8}{'other':>8}"
    lines = [f"{op}", f"{'':<13}{'base':^{len(head)}} | {'new':^{len(head)}}",
             f"{'round':<7}{'first':<6}{head} | {head}"]
    for b, n in zip(base, new, strict=True):
        lines.append(f"{b.round:<7}{'base' if b.first else 'new':<6}{cells(b)} | {cells(n)}")

    def medians(samples: Sequence[Sample]) -> Sample:
        return Sample(op, "", 0, False, median([s.ops_per_s for s in samples]) or 0.0,
                      median([s.cpu_ms for s in samples]),
                      median([s.loop_ms for s in samples]),
                      median([s.other_ms for s in samples]),
                      median([s.calls for s in samples]))

    lines.append(f"{'median':<13}{cells(medians(base))} | {cells(medians(new))}")
    metrics = ("calls",) if calls else ("cpu_ms", "ops_per_s")
    lines.append("  " + "; ".join(compare(base, new, m) for m in metrics))
    errors = sum(s.errors for s in (*base, *new))
    if errors:
        first = next(s.first_error for s in (*base, *new) if s.first_error)
        lines.append(f"  {errors} errors, the first: {first}")
    return "\n".join(lines)


def read_calls(pid: int, path: Path, timeout: float = 10.0) -> int:
    """The Python calls the server ``pid`` has made so far (bench/callcount)."""
    path.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text() if path.exists() else ""
        if text.endswith("\n"):
            return int(text.split()[0])
        time.sleep(0.02)
    raise RuntimeError(f"server {pid} wrote no call count to {path}")


def imported_from(src: Path) -> Path:
    """Where a server started with ``PYTHONPATH=src`` imports pocketstack from."""
    done = subprocess.run(
        [sys.executable, "-c", "import pocketstack; print(pocketstack.__file__)"],
        env={**os.environ, "PYTHONPATH": str(src)}, capture_output=True, text=True,
        check=True, timeout=60)
    return Path(done.stdout.strip()).resolve()


async def one_round(side: Side, round_number: int, first: bool, args: argparse.Namespace,
                    payloads: Payloads) -> None:
    """Start the side's server, warm it up, measure each operation, stop it."""
    cloud = side.cloud
    cloud.start()
    try:
        who = login(cloud.auth_url)
        target = Target(side.name, f"{cloud.swift_url}/v1/AUTH_{who.project_id}", who.token,
                        cloud.servers())
        async with session(payloads.workload) as http:
            bench = ObjectBench(http, target, payloads)
            ops = bench.small_ops(CONTAINER)
            if round_number == 1 or "PUT" in args.ops:
                await put_container(http, target, CONTAINER)
            if "PUT" not in args.ops and round_number == 1:  # the objects that GET/HEAD read
                await run("setup", ops["PUT"], count=args.objects,
                          concurrency=args.concurrency)
            reads = {name: round_robin(ops[name], args.objects) for name in ("GET", "HEAD")}
            if "GET-LARGE" in args.ops:
                large = bench.large_ops(LARGE_CONTAINER)
                if round_number == 1:
                    await put_container(http, target, LARGE_CONTAINER)
                    await run("setup", large["PUT"], count=args.large_objects,
                              concurrency=args.concurrency)
                reads["GET-LARGE"] = round_robin(large["GET"], args.large_objects)
            if "PUT" not in args.ops and args.warmup:
                await run("warm-up", reads["GET"], count=args.warmup,
                          concurrency=args.concurrency)
            for op in [name for name in ORDER if name in args.ops]:
                count = args.large_count if op == "GET-LARGE" else args.count
                await measure_op(side, op, {**ops, **reads}[op], round_number, first, args,
                                 target, count)
    finally:
        cloud.stop()


def round_robin(op: Operation, objects: int) -> Operation:
    """``op`` on object ``i % objects``: reads of the objects that exist."""
    def on(i: int) -> Awaitable[int]:
        return op(i % objects)
    return on


async def measure_op(side: Side, op: str, operation: Operation, round_number: int,
                     first: bool, args: argparse.Namespace, target: Target,
                     count: int) -> None:
    pids = target.servers.pids()
    single = len(pids) == 1
    root = pids[0]
    if side.calls_file and not single:
        raise RuntimeError("--calls counts one server process: not with --workers")
    threads0 = thread_cpu_seconds(root) if single else {}
    calls0 = read_calls(root, side.calls_file) if side.calls_file else None
    result = await measure(side.name, op, operation, count=count,
                           concurrency=args.concurrency, servers=target.servers)
    calls1 = read_calls(root, side.calls_file) if side.calls_file else None
    ops = max(result.ops, 1)
    loop_ms = other_ms = None
    if single:
        threads1 = thread_cpu_seconds(root)
        spent = {tid: cpu - threads0.get(tid, 0.0) for tid, cpu in threads1.items()}
        loop_ms = round(spent.get(root, 0.0) * 1000 / ops, 3)
        other_ms = round(sum(v for t, v in spent.items() if t != root) * 1000 / ops, 3)
    side.samples.append(Sample(
        op, side.name, round_number, first, round(result.ops_per_s, 1), result.cpu_ms_per_op,
        loop_ms, other_ms,
        None if calls0 is None or calls1 is None else round((calls1 - calls0) / ops, 1),
        round(result.p50_ms, 2), round(result.p99_ms, 2), result.errors, result.first_error))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="HEAD", help="git ref of the base (default HEAD)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ops", default="GET,HEAD",
                        help="comma-separated, of PUT,GET,HEAD,DELETE,GET-LARGE "
                             "(default GET,HEAD)")
    parser.add_argument("--count", type=int, default=8000, help="operations per round")
    parser.add_argument("--objects", type=int, default=200,
                        help="objects that GET and HEAD read round-robin")
    parser.add_argument("--warmup", type=int, default=1000,
                        help="GETs after each start, not measured (default 1000)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--large-objects", type=int, default=16,
                        help="objects that GET-LARGE reads round-robin")
    parser.add_argument("--large-mib", type=int, default=64, help="their size")
    parser.add_argument("--large-count", type=int, default=32,
                        help="GET-LARGE operations per round")
    parser.add_argument("--calls", action="store_true",
                        help="count Python calls per operation instead of timing")
    parser.add_argument("--ps-arg", action="append", default=[], metavar="ARG",
                        help="extra argument for `pocketstack up` on both sides")
    parser.add_argument("--bcrypt-rounds", type=int, default=4)
    parser.add_argument("--work", type=Path,
                        help="where results and logs go (default .bench/ab-<time>)")
    parser.add_argument("--keep", action="store_true", help="keep the two data dirs")
    args = parser.parse_args(argv)
    args.ops = [op.strip().upper() for op in args.ops.split(",") if op.strip()]
    if not args.ops or set(args.ops) - set(ORDER):
        parser.error(f"--ops: a comma-separated list of {', '.join(ORDER)}")
    if "DELETE" in args.ops and "PUT" not in args.ops:
        parser.error("--ops: DELETE removes what PUT wrote in the same round: add PUT")
    if "PUT" in args.ops and args.count < args.objects:
        parser.error("--count: PUT writes the objects GET and HEAD read: at least --objects")
    if min(args.rounds, args.count, args.objects, args.large_objects, args.large_mib,
           args.large_count) < 1:
        parser.error("--rounds, --count, --objects and the --large-* must be positive")
    return args


def checkout(ref: str, into: Path) -> None:
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--force",
                    str(into), ref], check=True, capture_output=True, text=True)


def remove_checkout(path: Path) -> None:
    subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)],
                   check=False, capture_output=True)


async def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    work = args.work or REPO / ".bench" / f"ab-{time.strftime('%Y%m%d-%H%M%S')}"
    work.mkdir(parents=True, exist_ok=True)
    base_tree = work / "base-tree"
    checkout(args.base, base_tree)
    sides: list[Side] = []
    try:
        for name, src in (("base", base_tree / "src"), ("new", REPO / "src")):
            found = imported_from(src)
            if not found.is_relative_to(src.resolve()):
                raise RuntimeError(f"{name}: PYTHONPATH={src} imports pocketstack from {found}")
            path = [str(src)]
            calls_file = None
            env = {}
            if args.calls:
                calls_file = work / f"{name}.calls"
                path.append(str(CALLCOUNT_HOOK))
                env["CALLCOUNT"] = str(calls_file)
            env["PYTHONPATH"] = os.pathsep.join(path)
            cloud = PocketstackCloud(work, bcrypt_rounds=args.bcrypt_rounds,
                                     extra_args=args.ps_arg, data_dir=f"{name}-data",
                                     name=name, env=env)
            sides.append(Side(name, src, cloud, calls_file))
        by_name = {side.name: side for side in sides}
        count = max(args.count if "PUT" in args.ops else 0, args.objects)
        payloads = Payloads(Workload(concurrency=args.concurrency, small_count=count,
                                     large_count=args.large_objects,
                                     large_size=args.large_mib * MiB))
        print(f"bench.ab: base {args.base} ({base_tree}), new {REPO / 'src'}; "
              f"{args.rounds} rounds of {', '.join(args.ops)} x {args.count}, "
              f"concurrency {args.concurrency}{', counting calls' if args.calls else ''}",
              flush=True)
        for round_number in range(1, args.rounds + 1):
            order = sides_in_round(round_number)
            for name in order:
                await one_round(by_name[name], round_number, name == order[0], args,
                                payloads)
                last = by_name[name].samples[-len(args.ops):]
                print(f"  round {round_number} {name:<4} " + "  ".join(
                    f"{s.op} {s.calls} calls" if args.calls else
                    f"{s.op} {rate(s.ops_per_s)}/s {s.cpu_ms} ms (p50 {s.p50_ms:.1f},"
                    f" p99 {s.p99_ms:.1f} ms)" for s in last), flush=True)
        with (work / "results.jsonl").open("w") as out:
            for side in sides:
                for sample in side.samples:
                    out.write(json.dumps(asdict(sample)) + "\n")
        print()
        for op in [name for name in ORDER if name in args.ops]:
            base = [s for s in by_name["base"].samples if s.op == op]
            new = [s for s in by_name["new"].samples if s.op == op]
            print(report(op, base, new, args.calls), end="\n\n")
        print(f"results: {work / 'results.jsonl'}")
        errors = sum(s.errors for side in sides for s in side.samples)
        return 1 if errors else 0
    finally:
        for side in sides:
            side.cloud.stop()
            if not args.keep:
                shutil.rmtree(side.cloud.data_dir, ignore_errors=True)
        remove_checkout(base_tree)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
