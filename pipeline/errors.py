"""The errors a user can fix, which the command line reports as one line (exit code 2)."""
from __future__ import annotations


class UsageError(ValueError):
    """An unusable argument, input folder, configuration or environment: one line, exit code 2."""
