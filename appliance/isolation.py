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
from collections.abc import Mapping, Sequence

ENV_KEYS = ("PATH", "LANG", "LC_ALL", "TMPDIR")


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
