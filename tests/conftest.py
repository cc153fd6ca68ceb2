"""Shared fixtures: the contract's example folder, a Prefect test harness (one per session), and
the fingerprint key every test runs with."""
import os
from pathlib import Path

import pytest

from pipeline.ingest.fingerprint import FingerprintKey
from pipeline.ingest.fingerprint_key import ENV_VAR

# The fingerprint key of every run the tests make, in process or as a `goodhart` subprocess: fixed,
# so results are reproducible, and given through the environment, so no test writes a key file
# into the real home folder (tests of the key file unset it and use a tmp path).
TEST_KEY_HEX = "5eed" * 16
TEST_KEY = FingerprintKey(bytes.fromhex(TEST_KEY_HEX))
os.environ[ENV_VAR] = TEST_KEY_HEX

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
