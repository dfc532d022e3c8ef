"""Shared fixtures."""

from __future__ import annotations

import pytest

import benchmark.cli as cli


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """``benchmark.cli.main`` with only the table, compare and report commands (fast, no torch import);
    returns ``(exit code, stdout, stderr)``."""
    monkeypatch.setattr(cli, "_COMMAND_MODULES", ("benchmark.report.tables", "benchmark.report.compare", "benchmark.report.report"))

    def run(*argv):
        code = cli.main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run
