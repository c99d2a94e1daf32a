"""Small helpers shared by tests."""

import time


def wait_until(predicate, *, timeout: float = 30, interval: float = 0.05, message: str = ""):
    """Poll ``predicate`` until truthy; fail the test with ``message`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(message or f"condition not met within {timeout}s")
