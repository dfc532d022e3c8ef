"""Shared fixtures."""

from __future__ import annotations

import subprocess
import sys

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


_MINI_BUILD: list[subprocess.Popen] = []


def pytest_sessionstart(session) -> None:
    """Start building the miniature pretrained SAM now, if it is not cached, in a process of its own
    (one thread): the two minutes it takes overlap the tests that do not need it."""
    from benchmark.train.pretrain import checkpoint_path, recipe_for

    if not checkpoint_path(recipe_for("sam_tiny")).is_file():
        _MINI_BUILD.append(subprocess.Popen([sys.executable, "-m", "benchmark", "pretrain-mini", "--no-progress"],
                                            stdout=subprocess.DEVNULL))


def pytest_sessionfinish(session, exitstatus) -> None:
    """A selection of tests that never needed the mini-SAM does not leave its build running."""
    for build in _MINI_BUILD:
        if build.poll() is None:
            build.terminate()
            build.wait()


@pytest.fixture(scope="session")
def mini_sam():
    """The smoke preset's miniature pretrained SAM, in the suite's cache where `run_all.sh` finds it
    too (built by the process started with the session); every smoke-preset run starts from it."""
    from benchmark.train.pretrain import ensure_mini_sam

    for build in _MINI_BUILD:
        build.wait()  # then found in the cache (or, if that process failed, built here and the error shown)
    return ensure_mini_sam(progress=False)
