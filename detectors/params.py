"""Estimator parameters the scikit-learn way (`get_params`, `set_params`, a readable repr), without
importing scikit-learn: `import detectors` stays cheap, and the models' libraries (seconds of
imports) load on a thread while a run loads its data (flows.chain). pyod's own BaseDetector carries
these methods the same way; `sklearn.base.clone` works on any object that has them."""
from __future__ import annotations

import inspect
from typing import Any, Self


class Parameters:
    """Parameters are the constructor's named arguments, stored under the same names."""

    @classmethod
    def _param_names(cls) -> list[str]:
        if cls.__init__ is object.__init__:
            return []
        named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return sorted(p.name for p in inspect.signature(cls.__init__).parameters.values()
                      if p.name != "self" and p.kind in named)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters and their values (`deep` is accepted for scikit-learn's sake:
        no parameter here is itself an estimator)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        """Set parameters by name; an unknown name is a ValueError."""
        valid = set(self._param_names())
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; valid: {sorted(valid)}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"
