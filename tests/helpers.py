"""What several test files share."""


def stop_after(n: int):
    """A ``should_stop`` for ``run_job`` that turns true after ``n`` calls (a stop mid-job)."""
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > n
    return stop
