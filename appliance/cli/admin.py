"""Console administrators: `admin create|list|reset-password|remove|setup-link`."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from appliance.admin import accounts, setup
from appliance.cli.common import CliError, Subparsers, command, group, with_runtime
from appliance.errors import DomainError
from appliance.runtime import Runtime


def read_passphrase() -> str:
    """From stdin when piped (never argv: it would show in `ps` and shell history), else asked twice."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Administrator passphrase: ")
    if getpass.getpass("Again: ") != first:
        raise CliError("the two passphrases differ")
    return first


def print_setup_link(runtime: Runtime, base_url: str | None = None) -> None:
    token = setup.issue(runtime.control)
    runtime.admin_event("admin setup-link")
    url = setup.link(base_url or runtime.settings.base_url, token)
    print(f"Administrator setup link (one use, valid {int(setup.LIFETIME.total_seconds() // 60)} minutes): {url}")


@with_runtime
def cmd_create(runtime: Runtime, args: argparse.Namespace) -> int:
    try:
        accounts.create(runtime.control, args.name, read_passphrase())
    except DomainError as exc:
        raise CliError(str(exc)) from None
    runtime.admin_event("admin create", target=f"admin:{args.name}")
    print(f"administrator {args.name} created")
    return 0


@with_runtime
def cmd_list(runtime: Runtime, args: argparse.Namespace) -> int:
    for a in accounts.list_admins(runtime.control):
        locked = f"\tlocked until {a['locked_until']}" if a["locked_until"] else ""
        print(f"{a['name']}\tcreated {a['created']}\tlast login {a['last_login'] or 'never'}{locked}")
    return 0


@with_runtime
def cmd_reset(runtime: Runtime, args: argparse.Namespace) -> int:
    try:
        accounts.reset_passphrase(runtime.control, args.name, read_passphrase())
    except DomainError as exc:
        raise CliError(str(exc)) from None
    runtime.admin_event("admin reset-password", target=f"admin:{args.name}")
    print(f"administrator {args.name}: new passphrase set, account unlocked, sessions ended")
    return 0


@with_runtime
def cmd_remove(runtime: Runtime, args: argparse.Namespace) -> int:
    try:
        accounts.remove(runtime.control, args.name)
    except DomainError as exc:
        raise CliError(str(exc)) from None
    runtime.admin_event("admin remove", target=f"admin:{args.name}")
    print(f"administrator {args.name} removed")
    return 0


@with_runtime
def cmd_setup_link(runtime: Runtime, args: argparse.Namespace) -> int:
    if accounts.count(runtime.control):
        print("An administrator exists already: no setup link; add others with `appliance admin create`")
        return 0
    print_setup_link(runtime, args.base_url)
    return 0


def register(sub: Subparsers[Any]) -> None:
    admin = group(sub, "admin", "administrators of the web console (/admin/)")
    p = command(admin, "create", cmd_create, "create an administrator (passphrase on stdin or asked)")
    p.add_argument("name")
    command(admin, "list", cmd_list, "list administrators (never passphrases)")
    p = command(admin, "reset-password", cmd_reset, "set a new passphrase (stdin or asked); unlocks, ends sessions")
    p.add_argument("name")
    p = command(admin, "remove", cmd_remove, "remove an administrator and end their sessions")
    p.add_argument("name")
    p = command(admin, "setup-link", cmd_setup_link, "print a new first-run setup link while no administrator exists")
    p.add_argument("--base-url", help="where browsers reach the server (default: the public URL)")
