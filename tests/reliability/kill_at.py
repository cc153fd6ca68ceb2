"""Test-only launcher: the `goodhart` command, SIGKILLed when its run reaches a stage.

    python -m tests.reliability.kill_at STAGE[+SECONDS] run --no-prefect --input DIR --db FILE ...

runs pipeline.cli.main on the arguments after STAGE with an `on_stage` callback (the stage names
of flows.chain: begin, load, features, detect, finish, publish) that kills this process when
STAGE starts, or SECONDS later, to prove a killed run loses nothing.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable

from pipeline.cli import main


def kill_at(spec: str) -> Callable[[str], None]:
    """An on_stage callback that SIGKILLs this process at STAGE (or STAGE+SECONDS)."""
    stage, _, delay = spec.partition("+")

    def on_stage(name: str) -> None:
        if name == stage and not delay:
            os.kill(os.getpid(), signal.SIGKILL)
        elif name == stage:
            timer = threading.Timer(float(delay), os.kill, (os.getpid(), signal.SIGKILL))
            timer.daemon = True  # a run that ends first exits normally
            timer.start()

    return on_stage


if __name__ == "__main__":
    main(sys.argv[2:], on_stage=kill_at(sys.argv[1]))
