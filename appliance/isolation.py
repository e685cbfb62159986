"""Run a helper program as an isolated child process: the one way the appliance does it.

Used by the document reader (appliance.documents.sandbox) and by narration's text-to-speech worker
(appliance.ai.narration). The child is a fresh program (never a fork of the multi-threaded server),
gets its input on stdin and answers on stdout, runs with a minimal environment (no secrets, no
`APPLIANCE_*` settings) and a deadline after which it is killed. A memory cap is the child's own
job (`resource.setrlimit(RLIMIT_AS, ...)` first thing, with the figure its input gives it):
setting it between fork and exec (`preexec_fn`) is not safe in a threaded parent.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence

ENV_KEYS = ("PATH", "LANG", "LC_ALL", "TMPDIR")
# The one-file bootloader's variables (PyInstaller 6): with them a child of the same executable is a
# "subprocess" of this instance and uses its unpacked directory and library path.
FROZEN_ENV = (
    "_PYI_ARCHIVE_FILE",
    "_PYI_APPLICATION_HOME_DIR",
    "_PYI_PARENT_PROCESS_LEVEL",
    "LD_LIBRARY_PATH",
)
# where a source install's child imports this package from (its working directory)
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def program_command(module: str, frozen_arg: str) -> tuple[list[str], dict[str, str]]:
    """How to start one of our own programs: `python -m module` from source; in the one-file binary
    the binary itself with a hidden first argument (build/binary.sh's entry script dispatches it
    before the CLI is imported). Returns argv and the variables it needs beyond ENV_KEYS."""
    if getattr(sys, "frozen", False):
        return [sys.executable, frozen_arg], {k: os.environ[k] for k in FROZEN_ENV if k in os.environ}
    return [sys.executable, "-m", module], {}


class ChildTimeout(Exception):
    """The child ran past its deadline and was killed."""


class ChildNotStarted(Exception):
    """The program could not be started (missing, not executable, out of processes)."""


def run_isolated(
    argv: Sequence[str],
    stdin: bytes,
    *,
    timeout: float,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run `argv` with `stdin`; the finished process (any exit status), or ChildTimeout /
    ChildNotStarted. stdout and stderr are captured whole: bound what the child may write.
    `env`: variables the child needs beyond ENV_KEYS (never secrets)."""
    env = {**{k: v for k, v in os.environ.items() if k in ENV_KEYS}, **(env or {})}
    try:
        return subprocess.run(
            list(argv), input=stdin, capture_output=True, timeout=timeout, env=env, cwd=cwd, check=False
        )
    except subprocess.TimeoutExpired:
        raise ChildTimeout(f"stopped after {timeout:g} s") from None
    except OSError as exc:
        raise ChildNotStarted(exc.strerror or type(exc).__name__) from None
