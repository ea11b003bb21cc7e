"""Shared test helper: poll a condition while executors spin in other threads."""
import time


def wait_for(cond, timeout=15.0):
    """True as soon as ``cond()`` holds, False after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False
