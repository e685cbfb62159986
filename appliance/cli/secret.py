"""Operator secrets and the audit trail: `secret set|list|remove`, `log-id`, `audit verify|export`."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from appliance.cli.common import CliError, Subparsers, command, group, with_runtime
from appliance.runtime import Runtime


@with_runtime
def cmd_secret_set(runtime: Runtime, args: argparse.Namespace) -> int:
    """Read the value from stdin (never argv: it would show in `ps` and shell history)."""
    from appliance.security import secrets as operator_secrets

    value = sys.stdin.readline().rstrip("\r\n") if not sys.stdin.isatty() else getpass.getpass("Value: ")
    try:
        operator_secrets.put(runtime.keyring, args.name, value)
    except operator_secrets.SecretError as exc:
        raise CliError(str(exc)) from None
    runtime.admin_event("secret set", target=args.name)
    print(f"{args.name} stored in the encrypted keyring; restart the server to use it", file=sys.stderr)
    return 0


@with_runtime
def cmd_secret_list(runtime: Runtime, args: argparse.Namespace) -> int:
    from appliance.security import secrets as operator_secrets

    for name in operator_secrets.names(runtime.keyring):
        print(name)
    return 0


@with_runtime
def cmd_secret_remove(runtime: Runtime, args: argparse.Namespace) -> int:
    from appliance.security import secrets as operator_secrets

    try:
        removed = operator_secrets.remove(runtime.keyring, args.name)
    except operator_secrets.SecretError as exc:
        raise CliError(str(exc)) from None
    runtime.admin_event("secret remove", target=args.name)
    print(f"{args.name} {'removed' if removed else 'was not set'}", file=sys.stderr)
    return 0


@with_runtime
def cmd_log_id(runtime: Runtime, args: argparse.Namespace) -> int:
    """The pseudonym logs carry for a learner or client identifier (appliance.security.pseudonym)."""
    from appliance.security.pseudonym import log_id, log_key

    runtime.admin_event("log-id")  # the identifier itself stays out of the audit log
    key = log_key(runtime.pepper)
    for identifier in args.identifier:
        print(f"{log_id(key, identifier)}\t{identifier}" if len(args.identifier) > 1 else log_id(key, identifier))
    return 0


@with_runtime
def cmd_audit_verify(runtime: Runtime, args: argparse.Namespace) -> int:
    result = runtime.audit.verify()
    if result.ok:
        print(f"audit log OK: {result.entries} entries, chain intact")
        return 0
    print(f"audit log FAILED verification ({result.entries} entries):")
    for problem in result.problems:
        print(f"  - {problem}")
    return 1


@with_runtime
def cmd_audit_export(runtime: Runtime, args: argparse.Namespace) -> int:
    if args.output:
        with open(args.output, "w") as out:
            n = runtime.audit.export(out, args.since)
        print(f"exported {n} entries to {args.output}", file=sys.stderr)
    else:
        runtime.audit.export(sys.stdout, args.since)
    return 0


def register(sub: Subparsers[Any]) -> None:
    p = command(sub, "log-id", cmd_log_id, "print the pseudonym that logs carry for a user or client identifier")
    p.add_argument("identifier", nargs="+")
    secret = group(sub, "secret", "operator secrets in the encrypted keyring")
    p = command(secret, "set", cmd_secret_set, "store a secret (value on stdin), e.g. remote-api-key:<engine name>")
    p.add_argument("name")
    command(secret, "list", cmd_secret_list, "names of the stored secrets (never values)")
    p = command(secret, "remove", cmd_secret_remove, "remove a stored secret")
    p.add_argument("name")


def register_audit(sub: Subparsers[Any]) -> None:
    audit = group(sub, "audit", "the audit log")
    command(audit, "verify", cmd_audit_verify, "check the hash chain")
    p = command(audit, "export", cmd_audit_export, "write entries as JSON lines")
    p.add_argument("--output")
    p.add_argument("--since", type=int, default=0, help="only entries after this sequence number")
