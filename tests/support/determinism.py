"""Run a snippet in fresh interpreters with different hash seeds."""

import os
import subprocess
import sys


def outputs_under_hash_seeds(script: str, seeds: tuple[str, ...] = ("1", "2")) -> set[str]:
    """The distinct outputs of ``script``: one element when nothing depends on ``hash()``."""
    return {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in seeds
    }
