"""What every upstream plugin of ours registers: the tests it leaves out, with why, and a floor on those that pass.

config.pluginmanager.register(Deselected("SQLiteSession's internals", {"test_name": "why"}))
config.pluginmanager.register(AtLeastPassed(53))   # fewer passing: the swap did not take, the run fails
"""

from __future__ import annotations

import pytest


class Deselected:
    """Leaves out the tests of these names (each parametrisation too), and lists them with why at the end."""

    def __init__(self, title: str, reasons: dict[str, str]) -> None:
        self.title = title
        self.reasons = reasons

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        kept, deselected = [], []
        for item in items:
            (deselected if getattr(item, "originalname", item.name) in self.reasons else kept).append(item)
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = kept

    def pytest_terminal_summary(self, terminalreporter) -> None:
        terminalreporter.section("deselected: %s" % self.title)
        for name, reason in self.reasons.items():
            terminalreporter.write_line("%s: %s" % (name, reason))


class AtLeastPassed:
    """Fails a run in which fewer than `minimum` tests passed: a swap that did not take cannot pass in silence."""

    def __init__(self, minimum: int) -> None:
        self.minimum = minimum
        self.passed = 0

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" and report.passed:
            self.passed += 1

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.passed < self.minimum:
            terminalreporter.write_line("only %d passed, fewer than %d" % (self.passed, self.minimum), red=True)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if exitstatus == 0 and self.passed < self.minimum:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
