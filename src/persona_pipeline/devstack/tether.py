"""Run a command that dies with the process that started it (Linux).

    python -m persona_pipeline.devstack.tether PARENT_PID COMMAND [ARGS...]

Sets the parent-death signal (``prctl(PR_SET_PDEATHSIG, SIGTERM)``), checks the parent
is still the one that asked (it may have died before the signal was armed), then
``exec``\\ s the command, which keeps the signal. This is how ``persona dev`` and the
test fixtures keep their servers from outliving them even on ``kill -9``, without a
``preexec_fn`` (unsafe in a process with threads). Elsewhere than Linux it just execs.
"""

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def tethered(argv: list[str]) -> list[str]:
    """``argv`` wrapped so that it dies with the calling process."""
    if not sys.platform.startswith("linux"):
        return argv
    return [sys.executable, "-m", __name__, str(os.getpid()), *argv]


def main() -> None:
    parent, *command = sys.argv[1:]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != int(parent):
        sys.exit(1)  # the parent died before the signal was armed
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
