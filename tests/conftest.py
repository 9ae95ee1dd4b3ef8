"""Shared fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture
def runner():
    """Typer's CLI runner: commands run in-process, stdout and stderr apart."""
    from typer.testing import CliRunner

    return CliRunner()
