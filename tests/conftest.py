import os
import sys

sys.path.insert(0, os.path.dirname(__file__))


def pytest_terminal_summary(terminalreporter):
    """Print the size of the bad-input catalogue (tests/test_bad_input.py) when it ran."""
    reports = [r for key in ("passed", "failed") for r in terminalreporter.stats.get(key, [])
               if getattr(r, "when", "") == "call" and "test_bad_input.py" in r.nodeid]
    if reports:
        failed = sum(r.failed for r in reports)
        terminalreporter.write_line(f"bad-input catalogue: {len(reports)} cases, {failed} failed")
