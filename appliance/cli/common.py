"""What every command shares: the error type, the passphrase, opening the runtime, the leaf parser."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance import config
from appliance.runtime import Runtime, open_runtime
from appliance.storage import crypto

Subparsers = argparse._SubParsersAction  # the object `add_subparsers()` returns
Handler = Callable[[argparse.Namespace], int]


class CliError(Exception):
    """A usage or state problem the operator can fix: printed as `error: ...`, exit status 2."""


def passphrase(args: argparse.Namespace, data_dir: Path, creating: bool = False) -> str | None:
    wants = getattr(args, "passphrase_stdin", False) or (not creating and crypto.is_sealed(data_dir))
    if not wants:
        return None
    if getattr(args, "passphrase_stdin", False):
        return sys.stdin.readline().rstrip("\n")
    if os.environ.get("APPLIANCE_PASSPHRASE"):
        return os.environ["APPLIANCE_PASSPHRASE"]
    if sys.stdin.isatty():
        return getpass.getpass("Master passphrase: ")
    raise CliError("this data directory is sealed: pipe the passphrase with --passphrase-stdin")


def open_from_args(args: argparse.Namespace) -> Runtime:
    data_dir = config.resolve_data_dir(args.data_dir)
    return open_runtime(config.load(data_dir), passphrase(args, data_dir))


def open_once(args: argparse.Namespace) -> Callable[[], Runtime]:
    """Open the runtime as often as needed, asking for a sealed directory's passphrase only once."""
    data_dir = config.resolve_data_dir(args.data_dir)
    secret = passphrase(args, data_dir)
    return lambda: open_runtime(config.load(data_dir), secret)


def with_runtime(fn: Callable[[Runtime, argparse.Namespace], int]) -> Handler:
    """A command that runs against an open runtime, closed whatever happens."""

    def run(args: argparse.Namespace) -> int:
        runtime = open_from_args(args)
        try:
            return fn(runtime, args)
        finally:
            runtime.close()

    return run


def command(subparsers: Subparsers[Any], name: str, fn: Handler, help_text: str) -> argparse.ArgumentParser:
    """A leaf command: every one takes --data-dir and --passphrase-stdin."""
    p: argparse.ArgumentParser = subparsers.add_parser(name, help=help_text)
    p.add_argument("--data-dir", help="data directory (or APPLIANCE_DATA_DIR)")
    p.add_argument("--passphrase-stdin", action="store_true", help="read the master passphrase from stdin")
    p.set_defaults(func=fn)
    return p


def group(subparsers: Subparsers[Any], name: str, help_text: str) -> Subparsers[Any]:
    """A command group such as `workspace` whose actions are leaves."""
    sub: Subparsers[Any] = subparsers.add_parser(name, help=help_text).add_subparsers(dest="action", required=True)
    return sub
