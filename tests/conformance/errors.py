"""The one exception of the harness: something that is not a test result went wrong."""

from __future__ import annotations


class HarnessError(Exception):
    """The harness itself broke (no sdist, venv failed, cloud did not start, provisioning
    failed, pytest crashed). ``run`` prints it and exits non-zero: unlike failing tests, it
    means there is no trustworthy number."""

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail
