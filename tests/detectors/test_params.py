"""detectors.params: scikit-learn's parameter API without importing scikit-learn."""
from __future__ import annotations

import subprocess
import sys

import pytest

from detectors.params import Parameters


class Model(Parameters):
    def __init__(self, n_estimators: int = 50, features: tuple[str, ...] = ("tokens",), *, random_state: int = 0) -> None:
        self.n_estimators = n_estimators
        self.features = features
        self.random_state = random_state


def test_parameters_are_the_constructors_named_arguments() -> None:
    model = Model(n_estimators=10)
    assert model.get_params() == {"features": ("tokens",), "n_estimators": 10, "random_state": 0}
    assert model.set_params(random_state=7) is model and model.random_state == 7
    assert repr(model) == "Model(features=('tokens',), n_estimators=10, random_state=7)"


def test_an_unknown_parameter_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid parameter 'n_trees' for Model"):
        Model().set_params(n_trees=5)


def test_the_flows_and_the_rules_import_without_scikit_learn() -> None:
    """scikit-learn, pyod and numba take seconds to import: only the models' fit needs them (a run
    imports them on a thread while it loads)."""
    code = "import sys, flows, detectors.rules, detectors.run_up; print(sorted({'sklearn', 'pyod', 'numba'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
