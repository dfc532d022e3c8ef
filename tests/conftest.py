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


@pytest.fixture(scope="session")
def mini_sam():
    """The smoke preset's miniature pretrained SAM: built once (a minute or two on 2 cores) into the
    suite's cache, where `run_all.sh` finds it too; every smoke-preset run starts from it."""
    from benchmark.train.pretrain import ensure_mini_sam

    return ensure_mini_sam(progress=False)
