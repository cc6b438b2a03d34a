"""bench.profile: py-spy's raw stacks → self / inclusive / package rankings, idle dropped."""

from __future__ import annotations

from bench.profile import aggregate, function_of, package_of

RAW = "\n".join([
    # busy: a PUT in a storage thread
    "<module> (/v/bin/pocketstack:8);Thread._bootstrap (/py/lib/python3.11/threading.py:995);"
    "put (/w/src/pocketstack/objectstore/storage/diskfile.py:10);"
    "fsync_dir (/w/src/pocketstack/objectstore/storage/fsutil.py:20) 6",
    # busy: the event loop writing a response
    "BaseEventLoop.run_forever (/py/lib/python3.11/asyncio/base_events.py:607);"
    "_SelectorSocketTransport.write (/py/lib/python3.11/asyncio/selector_events.py:1"
    "070) 4",
    # idle: a pool worker waiting for work, and the loop in select
    "Thread.run (/py/lib/python3.11/threading.py:975);"
    "_worker (/py/lib/python3.11/concurrent/futures/thread.py:81) 7",
    "BaseEventLoop._run_once (/py/lib/python3.11/asyncio/base_events.py:1884);"
    "EpollSelector.select (/py/lib/python3.11/selectors.py:468) 3",
    # idle: a storage pool thread waiting for a job
    "Thread.run (/py/lib/python3.11/threading.py:975);"
    "_Pool._work (/w/src/pocketstack/objectstore/storage/threads.py:70);"
    "_Pool._wait_for_job (/w/src/pocketstack/objectstore/storage/threads.py:76) 5",
    "garbage line",
])


def test_frames_lose_line_numbers_and_keep_short_paths() -> None:
    frame = "DiskFile.open (/w/.venv/lib/python3.11/site-packages/aiohttp/client.py:12)"
    assert function_of(frame) == "DiskFile.open (aiohttp/client.py)"
    assert package_of(frame) == "aiohttp"
    assert package_of("f (/w/src/pocketstack/objectstore/proxy/app.py:3)") == \
        "pocketstack/objectstore/proxy"


def test_aggregate_drops_idle_stacks_and_plumbing() -> None:
    profile = aggregate("small PUT", RAW)
    assert (profile.samples, profile.idle_samples) == (10, 15)
    assert profile.self_by_function.most_common(1)[0] == (
        "fsync_dir (pocketstack/objectstore/storage/fsutil.py)", 6)
    inclusive = dict(profile.inclusive_by_function)
    assert inclusive["put (pocketstack/objectstore/storage/diskfile.py)"] == 6
    assert not any("threading.py" in name or "base_events" in name for name in inclusive)
    assert profile.self_by_package["pocketstack/objectstore/storage"] == 6
    assert profile.as_dict()["self"][0][1] == 60.0
