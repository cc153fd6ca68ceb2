"""Shared fixtures: the contract's example folder and a Prefect test harness (one per session)."""
import os
from pathlib import Path

import pytest

# a copy of shared/contract-example, so a bare clone can run the tests
CONTRACT_EXAMPLE = Path(__file__).resolve().parent / "fixtures" / "contract-example"


@pytest.fixture(scope="session")
def contract_example() -> Path:
    return CONTRACT_EXAMPLE


@pytest.fixture(scope="session")
def prefect_harness():
    """A temporary Prefect API for the whole session (starting one costs ~15-20 s)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no telemetry from a closed network
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness():
        yield
