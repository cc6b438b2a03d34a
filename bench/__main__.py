"""``make bench``: measure the machine's ceilings, start a throwaway pocketstack (and with
``--compare upstream`` upstream Keystone + Swift from PyPI), time first and cold starts, run
the identity and object workloads over HTTP in interleaved rounds (the object workload also
on a pocketstack with ``--workers 2``), print one table and JSON lines; ``--profile`` then
samples pocketstack with py-spy during small PUT, small GET and token validate.

    python -m bench [--compare upstream] [--quick] [--rounds 2] [--concurrency 16]
                    [--workers 2] [--profile] [--ps-arg=--log-level=info ...] [--keep]

Everything of a run stays in ``.bench/run-<time>/`` (logs, ``results.jsonl``, profiles);
the clouds' data is removed at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import math
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp

from bench import ceilings, profile
from bench.clouds import Cloud, PocketstackCloud, login
from bench.identity import OVERHEAD_ROUNDS, IdentityBench, bcrypt_ms
from bench.objects import ObjectBench, Payloads, Target, Workload, session
from bench.report import PS, Run, ceilings_table, json_lines, startup_table, table
from bench.runner import Result, pool

ROOT = Path(__file__).resolve().parent.parent / ".bench"


@dataclass(frozen=True)
class Counts:
    workload: Workload
    password_issues: int
    overhead_issues: int  # password issues on the cloud hashing at OVERHEAD_ROUNDS
    token_issues: int
    validates: int
    disk_seconds: float
    seq_bytes: int
    http_small: int
    http_big: int


FULL = Counts(Workload(), password_issues=32, overhead_issues=400, token_issues=1000,
              validates=3000,
              disk_seconds=2.0, seq_bytes=1024 ** 3, http_small=5000, http_big=16)
QUICK = Counts(Workload(small_count=300, listing_objects=1000, listing_runs=6, large_count=4),
               password_issues=8, overhead_issues=100, token_issues=200, validates=500,
               disk_seconds=1.0,
               seq_bytes=256 * 1024 ** 2, http_small=1000, http_big=4)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compare", choices=["upstream"], help="also run upstream OpenStack")
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    parser.add_argument("--rounds", type=int, default=2,
                        help="each phase's count is split into this many rounds, clouds "
                             "alternating, to show the spread (default 2)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--small-count", type=int)
    parser.add_argument("--listing-objects", type=int)
    parser.add_argument("--large-count", type=int)
    parser.add_argument("--large-mib", type=int, default=64)
    parser.add_argument("--only", choices=["identity", "objects"], help="one workload only")
    parser.add_argument("--skip-ceilings", action="store_true")
    parser.add_argument("--profile", action="store_true",
                        help="afterwards, py-spy pocketstack during small PUT, GET, validate")
    parser.add_argument("--ps-arg", action="append", default=[], metavar="ARG",
                        help="extra argument for `pocketstack up` (repeatable)")
    parser.add_argument("--workers", type=int, default=2, metavar="N",
                        help="also run the object workload on a pocketstack serving with "
                             "`up --workers N` (default 2; 0 or 1: not)")
    parser.add_argument("--bcrypt-rounds", type=int, default=12)
    parser.add_argument("--keep", action="store_true", help="keep the clouds' data")
    return parser.parse_args()


def counts_from(args: argparse.Namespace) -> Counts:
    base = QUICK if args.quick else FULL
    w = base.workload
    workload = replace(w, concurrency=args.concurrency,
                       small_count=args.small_count or w.small_count,
                       listing_objects=args.listing_objects or w.listing_objects,
                       large_count=args.large_count or w.large_count,
                       large_size=args.large_mib * 1024 * 1024)
    return replace(base, workload=workload)


class MemorySampler:
    """Peak RSS and PSS of the active cloud's processes, sampled every half second."""

    def __init__(self) -> None:
        self.active: tuple[str, Cloud] | None = None
        self.peak: dict[str, tuple[float, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            active = self.active
            if active is None:
                continue
            memory = active[1].servers().memory()
            rss, pss = self.peak.get(active[0], (0.0, 0.0))
            self.peak[active[0]] = (max(rss, memory.rss_mb), max(pss, memory.pss_mb))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def split(total: int, rounds: int) -> int:
    return max(1, math.ceil(total / rounds))


def start_clouds(clouds: list[Cloud], run: Run, rounds: int) -> None:
    """First start, then ``rounds`` cold starts, of each cloud; it is left running."""
    for cloud in clouds:
        first = cloud.start()
        run.first_start[cloud.name] = first.__dict__
        print(f"{cloud.name}: first start: token {first.first_token_s:.2f} s, storage "
              f"{first.storage_ready_s:.2f} s", flush=True)
        run.cold_start[cloud.name] = []
        for _ in range(rounds):
            cloud.stop()
            cold = cloud.start()
            run.cold_start[cloud.name].append(cold.__dict__)
            print(f"{cloud.name}: cold start: token {cold.first_token_s:.2f} s, storage "
                  f"{cold.storage_ready_s:.2f} s", flush=True)
        time.sleep(2)  # settle, then idle memory
        memory = cloud.servers().memory()
        run.memory[cloud.name] = {"idle_rss_mb": memory.rss_mb, "idle_pss_mb": memory.pss_mb,
                                  "processes": memory.processes}


def target_of(cloud: Cloud) -> Target:
    who = login(cloud.auth_url)
    return Target(cloud.name, f"{cloud.swift_url}/v1/AUTH_{who.project_id}", who.token,
                  cloud.servers(), getattr(cloud, "fill_container", None))


Phase = Callable[[Cloud, int], Awaitable[list[Result]]]


async def interleave(clouds: list[Cloud], rounds: int, phase: Phase, run: Run) -> None:
    """``phase(cloud, round)`` for every round and cloud, the clouds' order alternating."""
    for index in range(rounds):
        for cloud in (clouds if index % 2 == 0 else clouds[::-1]):
            for result in await phase(cloud, index):
                run.add(result)
                print(f"  {cloud.name:<12} round {index + 1}: {result.name:<24} "
                      f"{result.ops_per_s:9.1f} ops/s {result.mb_per_s:8.1f} MB/s "
                      f"CPU {result.cpu_ms_per_op} ms/op"
                      + (f"  ERRORS {result.errors}: {result.first_error}"
                         if result.errors else ""), flush=True)


async def identity_phases(clouds: list[Cloud], counts: Counts, rounds: int, run: Run) -> None:
    c = counts.workload.concurrency

    async def phase(cloud: Cloud, _: int) -> list[Result]:
        # A session per phase: a server closes connections left idle while the other
        # cloud ran (uvicorn after 5 s), and a reused dead one would count as an error.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=c)) as http:
            b = IdentityBench(http, cloud.name, cloud.auth_url, cloud.servers(), concurrency=c)
            return [await b.issue_password(split(counts.password_issues, rounds)),
                    await b.issue_token(split(counts.token_issues, rounds)),
                    await b.validate(split(counts.validates, rounds))]

    await interleave(clouds, rounds, phase, run)


def overhead_phase(args: argparse.Namespace, counts: Counts, run: Run, work: Path) -> None:
    """Password issues on a second pocketstack that hashes at ``OVERHEAD_ROUNDS``: the
    overhead beyond the hash, where a hash is cheap enough for it to be read (the
    pocketstack cloud of the run keeps its rounds)."""
    cloud = PocketstackCloud(work, bcrypt_rounds=OVERHEAD_ROUNDS, extra_args=args.ps_arg,
                             data_dir=f"pocketstack-rounds-{OVERHEAD_ROUNDS}")
    c = counts.workload.concurrency

    async def issues() -> Result:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=c)) as http:
            b = IdentityBench(http, cloud.name, cloud.auth_url, cloud.servers(), concurrency=c)
            await b.issue_password(c, "warm-up")
            return await b.issue_password(
                counts.overhead_issues, f"token issue (password, {OVERHEAD_ROUNDS} rounds)")

    try:
        cloud.start()
        result = asyncio.run(issues())
    finally:
        cloud.stop()
    run.add(result)
    run.bcrypt_ms_overhead_rounds = bcrypt_ms(OVERHEAD_ROUNDS, checks=50)
    print(f"  {cloud.name:<12} {result.name}: CPU {result.cpu_ms_per_op} ms/op, a check "
          f"{run.bcrypt_ms_overhead_rounds} ms", flush=True)


async def object_phases(clouds: list[Cloud], counts: Counts, rounds: int, run: Run,
                        sampler: MemorySampler) -> None:
    w = counts.workload
    per_round = replace(w, small_count=split(w.small_count, rounds),
                        listing_runs=split(w.listing_runs, rounds),
                        large_count=split(w.large_count, rounds))
    payloads = Payloads(per_round)
    targets = {cloud.name: target_of(cloud) for cloud in clouds}

    def on(step: Callable[[ObjectBench, int], Awaitable[list[Result]]]) -> Phase:
        async def phase(cloud: Cloud, index: int) -> list[Result]:
            sampler.active = (cloud.name, cloud)
            async with session(w) as http:  # a session per phase, as for identity
                return await step(ObjectBench(http, targets[cloud.name], payloads), index)
        return phase

    async def small(bench: ObjectBench, index: int) -> list[Result]:
        return await bench.small(f"small-{index}")

    async def fill(bench: ObjectBench, _: int) -> list[Result]:
        return await bench.fill_listing("listing")

    async def listing(bench: ObjectBench, _: int) -> list[Result]:
        return [await bench.listing("listing")]

    async def large(bench: ObjectBench, index: int) -> list[Result]:
        results = await bench.large(f"large-{index}")
        await bench.delete_all(f"large-{index}", [f"big{i:04d}" for i in
                                                  range(per_round.large_count)])
        return results

    await interleave(clouds, rounds, on(small), run)
    await interleave(clouds, 1, on(fill), run)
    await interleave(clouds, rounds, on(listing), run)
    await interleave(clouds, rounds, on(large), run)
    sampler.active = None


async def profile_phases(cloud: PocketstackCloud, counts: Counts, work: Path, *,
                         with_objects: bool) -> None:
    """py-spy on pocketstack during small PUT, small GET and token validate, and after the
    object workload also the listing and large PUT + GET (a pass of its own: sampling slows
    the server, so these runs are not in the table)."""
    out = work / "profiles"
    out.mkdir(exist_ok=True)
    w = counts.workload
    payloads = Payloads(w)
    target = target_of(cloud)
    pid = cloud.servers().roots[0]
    profiles = []
    async with session(w) as http:
        bench = ObjectBench(http, target, payloads)
        ident = IdentityBench(http, cloud.name, cloud.auth_url, cloud.servers(),
                              concurrency=w.concurrency)
        await ident.validate(10)  # warm: a token, caches
        await bench.small("profile-warm")
        steps: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("small PUT", lambda: bench.small("profile", ("PUT",))),
            ("small GET", lambda: bench.small("profile", ("GET",))),
            ("token validate", lambda: ident.validate(counts.validates))]
        if with_objects:  # the listing container exists: the object workload filled it
            steps += [("listing", lambda: bench.listing("listing")),
                      ("large PUT+GET", lambda: bench.large("profile-large"))]
        for name, step in steps:
            recorder = profile.Recorder(pid, out / f"{name.replace(' ', '-')}.raw")
            await step()
            profiles.append(profile.aggregate(name, recorder.stop()))
            print(profiles[-1].text(12), flush=True)
    profile.save(profiles, out)
    print(f"profiles: {out}/profiles.txt (raw stacks: *.raw)", flush=True)


def finish(run: Run, work: Path) -> None:
    for key, results in run.rounds.items():
        run.pooled[key] = pool(results)
    print()
    print(ceilings_table(run))
    print()
    print(startup_table(run))
    print()
    print(table(run))
    print()
    lines = json_lines(run)
    for line in lines:
        print(line)
    (work / "results.jsonl").write_text("\n".join(lines) + "\n")
    (work / "table.txt").write_text("\n\n".join([ceilings_table(run), startup_table(run),
                                                 table(run)]) + "\n")


def source_state() -> str:
    """The commit measured, and how many files of the work tree differ from it."""
    repo = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "src"],
                               capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    changed = len(dirty.splitlines())
    return f"{head}" + (f" + {changed} changed files under src/" if changed else "")


def measure_ceilings(run: Run, counts: Counts, work: Path) -> None:
    run.disk = ceilings.disk(work, seconds=counts.disk_seconds,
                             threads=counts.workload.concurrency, seq_size=counts.seq_bytes)
    run.ceilings_http = ceilings.http_ceilings(
        work, concurrency=counts.workload.concurrency, small_count=counts.http_small,
        big_count=counts.http_big, big_size=counts.workload.large_size)
    print(ceilings_table(run), flush=True)


def start_workers_cloud(args: argparse.Namespace, run: Run, work: Path) -> PocketstackCloud:
    """A second pocketstack for the object workload, serving with ``--workers N``: the data
    path's multi-process configuration (issue 7), measured beside the default one process.
    Its idle memory is taken as for the others; it joins the object phases' alternation."""
    name = f"{PS} --workers {args.workers}"
    cloud = PocketstackCloud(work, bcrypt_rounds=args.bcrypt_rounds, name=name,
                             extra_args=[*args.ps_arg, f"--workers={args.workers}"],
                             data_dir="pocketstack-workers")
    first = cloud.start()
    print(f"{name}: first start: token {first.first_token_s:.2f} s, storage "
          f"{first.storage_ready_s:.2f} s", flush=True)
    time.sleep(2)
    memory = cloud.servers().memory()
    run.memory[name] = {"idle_rss_mb": memory.rss_mb, "idle_pss_mb": memory.pss_mb,
                        "processes": memory.processes}
    return cloud


def run_clouds(args: argparse.Namespace, counts: Counts, run: Run, work: Path) -> None:
    """Start the clouds, run the workloads (and the profile), stop the clouds."""
    rounds = max(1, args.rounds)
    pocketstack = PocketstackCloud(work, bcrypt_rounds=args.bcrypt_rounds,
                                   extra_args=args.ps_arg)
    clouds: list[Cloud] = [pocketstack]
    sampler = MemorySampler()
    try:
        if args.compare == "upstream":
            from bench.upstream import UpstreamCloud

            clouds.append(UpstreamCloud(ROOT, work))
        start_clouds(clouds, run, rounds)
        if args.only in (None, "identity"):
            asyncio.run(identity_phases(clouds, counts, rounds, run))
            if args.bcrypt_rounds > OVERHEAD_ROUNDS:
                overhead_phase(args, counts, run, work)
        if args.only in (None, "objects"):
            if args.workers > 1:
                clouds.append(start_workers_cloud(args, run, work))
            asyncio.run(object_phases(clouds, counts, rounds, run, sampler))
            for name, (rss, pss) in sampler.peak.items():
                run.memory.setdefault(name, {}).update(load_rss_mb=rss, load_pss_mb=pss)
        if args.profile:
            try:
                asyncio.run(profile_phases(pocketstack, counts, work,
                                           with_objects=args.only in (None, "objects")))
            except Exception as exc:  # the measured figures matter more than a profile
                print(f"profile failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        sampler.stop()
        for cloud in clouds:
            cloud.stop()
        if not args.keep:
            shutil.rmtree(work / "pocketstack", ignore_errors=True)
            shutil.rmtree(work / f"pocketstack-rounds-{OVERHEAD_ROUNDS}", ignore_errors=True)
            shutil.rmtree(work / "pocketstack-workers", ignore_errors=True)
            shutil.rmtree(work / "upstream" / "srv", ignore_errors=True)


def main() -> None:
    args = parse_args()
    counts = counts_from(args)
    work = ROOT / time.strftime("run-%Y%m%d-%H%M%S")
    work.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    run = Run(settings={"concurrency": counts.workload.concurrency,
                        "rounds": max(1, args.rounds), "quick": args.quick,
                        "compare": args.compare, "workload": counts.workload.__dict__,
                        "ps_args": args.ps_arg, "work": str(work), "source": source_state()})
    print(f"bench: work dir {work}", flush=True)
    if not args.skip_ceilings:
        measure_ceilings(run, counts, work)
    run.bcrypt_ms = bcrypt_ms(args.bcrypt_rounds)
    # as a packaged install has them (and upstream's venv): pocketstack's modules compiled,
    # so that a start where PYTHONDONTWRITEBYTECODE is set does not compile them each time
    compileall.compile_dir(ROOT.parent / "src", quiet=1)
    run_clouds(args, counts, run, work)
    run.settings["seconds"] = round(time.perf_counter() - began, 1)
    finish(run, work)
    print(f"bench: {run.settings['seconds']} s; results in {work}", file=sys.stderr)


if __name__ == "__main__":
    main()
