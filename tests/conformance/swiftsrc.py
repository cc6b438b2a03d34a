"""Swift's source (the PyPI sdist, downloaded at run time) and the virtualenv that runs it.

Layout under the work dir (``.conformance/``, gitignored)::

    cache/swift-<v>.tar.gz        the sdist, downloaded once per version
    src/swift-<v>/                 extracted: test/functional, test/sample.conf, tox.ini...
    venv/                          Swift + its test deps; never the project's venv
    venv/.conformance.json         what was installed (a different version rebuilds it)
    logs/pip.log                   pip's output of the last download/install

The sdist is pinned (``DEFAULT_SWIFT_VERSION``) so that numbers stay comparable between
runs; ``--swift-version latest`` takes PyPI's newest.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.conformance.errors import HarnessError

DEFAULT_SWIFT_VERSION = "2.38.3"

# What test/functional imports besides Swift and Swift's own requirements (see the sdist's
# test-requirements.txt): the runner, its per-test timeout, and keystone v3 auth for
# swiftclient (get_auth) and test_access_control (keystoneclient.v3).
TEST_REQUIREMENTS = (
    "pytest>=7",
    "pytest-timeout>=2.1",
    "python-swiftclient>=4.0",
    "python-keystoneclient>=5.0",
)
PIP_TIMEOUT = 1800.0


@dataclass(frozen=True)
class SwiftSource:
    version: str
    sdist: Path
    tree: Path  # the extracted sdist: pytest's rootdir

    @property
    def functional(self) -> Path:
        return self.tree / "test" / "functional"


@dataclass(frozen=True)
class Venv:
    path: Path

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"


def _pip(python: Path | str, args: list[str], log: Path, what: str) -> None:
    """Run ``python -m pip args``, output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as out:
        out.write(f"\n$ pip {' '.join(args)}\n")
        out.flush()
        try:
            done = subprocess.run([str(python), "-m", "pip", *args], stdout=out,
                                  stderr=subprocess.STDOUT, timeout=PIP_TIMEOUT, check=False)
        except subprocess.TimeoutExpired as exc:
            raise HarnessError(f"{what}: pip timed out", detail=_tail(log)) from exc
    if done.returncode != 0:
        raise HarnessError(f"{what}: pip exited {done.returncode} (log: {log})",
                           detail=_tail(log))


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _cached_sdist(cache: Path, version: str) -> Path | None:
    if version == "latest":
        return None  # always ask PyPI which is newest (the download is skipped if cached)
    candidate = cache / f"swift-{version}.tar.gz"
    return candidate if candidate.is_file() else None


def download_sdist(work: Path, version: str) -> Path:
    """The sdist of ``swift==version`` (or the newest), from the cache or from PyPI."""
    cache = work / "cache"
    cached = _cached_sdist(cache, version)
    if cached is not None:
        return cached
    spec = "swift" if version == "latest" else f"swift=={version}"
    with tempfile.TemporaryDirectory(prefix="swift-sdist-") as tmp:
        _pip(sys.executable, ["download", "--no-binary", ":all:", "--no-deps", "-d", tmp, spec],
             work / "logs" / "pip.log", f"downloading the {spec} sdist")
        found = sorted(Path(tmp).glob("swift-*.tar.gz"))
        if not found:
            raise HarnessError(f"pip download {spec} gave no swift-*.tar.gz",
                               detail="\n".join(p.name for p in Path(tmp).iterdir()))
        cache.mkdir(parents=True, exist_ok=True)
        target = cache / found[0].name
        shutil.move(str(found[0]), target)
    return target


def extract(work: Path, sdist: Path) -> SwiftSource:
    """Unpack ``sdist`` once under ``src/`` (atomically: a half-extracted tree never stays)."""
    name = sdist.name.removesuffix(".tar.gz")
    version = name.removeprefix("swift-")
    tree = work / "src" / name
    if not (tree / "test" / "functional" / "__init__.py").is_file():
        tree.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=tree.parent, prefix=".extract-") as tmp:
            try:
                with tarfile.open(sdist) as archive:
                    archive.extractall(tmp, filter="data")
            except (tarfile.TarError, OSError) as exc:
                raise HarnessError(f"cannot extract {sdist}: {exc} (delete it to re-download)"
                                   ) from exc
            shutil.rmtree(tree, ignore_errors=True)
            (Path(tmp) / name).rename(tree)
    if not (tree / "test" / "functional" / "__init__.py").is_file():
        raise HarnessError(f"{sdist.name} has no test/functional: not a Swift sdist?")
    return SwiftSource(version=version, sdist=sdist, tree=tree)


def prepare_source(work: Path, version: str = DEFAULT_SWIFT_VERSION) -> SwiftSource:
    return extract(work, download_sdist(work, version))


def ensure_venv(work: Path, source: SwiftSource) -> Venv:
    """``work/venv`` with Swift (from the sdist, with its requirements) and the test deps.

    Rebuilt from scratch when the recorded install differs (another Swift version, other
    requirements) or was left unfinished."""
    venv = Venv(work / "venv")
    marker = venv.path / ".conformance.json"
    wanted = {"swift": source.version, "requirements": list(TEST_REQUIREMENTS),
              "python": sys.version.split()[0]}
    try:
        if json.loads(marker.read_text()) == wanted and venv.python.exists():
            return venv
    except (OSError, ValueError):
        pass
    print(f"conformance: building {venv.path} (Swift {source.version} and its test deps; "
          "a few minutes, once)", flush=True)
    shutil.rmtree(venv.path, ignore_errors=True)
    log = work / "logs" / "pip.log"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv.path)], check=True,
                       capture_output=True, timeout=300)
    except (subprocess.SubprocessError, OSError) as exc:
        raise HarnessError(f"cannot create {venv.path}: {exc}") from exc
    _pip(venv.python, ["install", "--upgrade", "pip"], log,
         "upgrading pip in the conformance venv")
    _pip(venv.python, ["install", str(source.sdist), *TEST_REQUIREMENTS], log,
         f"installing Swift {source.version} and its test deps")
    marker.write_text(json.dumps(wanted, indent=2) + "\n")
    return venv
