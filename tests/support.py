"""Small helpers for tests that wait on a real API server.

Nothing here sleeps for a fixed time and then asserts: ``eventually`` polls until the
condition holds or the deadline passes, and then fails with the last thing it saw.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    check: Callable[[], T],
    *,
    timeout: float = 15.0,
    interval: float = 0.05,
    retry_on: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``check`` until it returns a truthy value without raising AssertionError.

    Returns that value. Exceptions named in ``retry_on`` are retried too, for what the API
    server makes true only eventually (a new CRD being served, a new RoleBinding reaching
    the authorizer). On timeout, re-raises the last exception, or fails saying what the last
    falsy value was.
    """
    deadline = time.monotonic() + timeout
    retried: tuple[type[BaseException], ...] = (AssertionError, *retry_on)
    while True:
        try:
            result = check()
        except retried:
            if time.monotonic() > deadline:
                raise
        else:
            if result:
                return result
            if time.monotonic() > deadline:
                msg = f"condition not met within {timeout} s; last value: {result!r}"
                raise AssertionError(msg)
        time.sleep(interval)
