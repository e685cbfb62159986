"""`appliance lrs add|list|remove|log|test`: the LRS endpoints xAPI statements go to (docs/xapi.md).

Per workspace and environment. The password or client secret is read from stdin (never argv: it
would show in `ps` and shell history); with --passphrase-stdin it is the line after the passphrase.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import uuid
from typing import Any

from appliance.cli.common import CliError, Subparsers, command, group, with_runtime
from appliance.errors import DomainError
from appliance.runtime import Runtime


def _database(runtime: Runtime, args: argparse.Namespace) -> Any:
    return runtime.environment(args.workspace, args.env)


@with_runtime
def cmd_lrs_add(runtime: Runtime, args: argparse.Namespace) -> int:
    from appliance.xapi import outbox

    secret = sys.stdin.readline().rstrip("\r\n") if not sys.stdin.isatty() else getpass.getpass("Secret: ")
    database = _database(runtime, args)
    try:
        endpoint_id = database.write(
            lambda w: outbox.add_endpoint(
                w,
                runtime.settings.webhooks,
                url=args.url,
                auth=args.auth,
                username=args.username,
                secret=secret,
                token_url=args.token_url,
                scope=args.scope,
            )
        )
    except DomainError as exc:
        runtime.admin_event("lrs add refused", workspace_id=args.workspace)
        raise CliError(str(exc)) from None
    runtime.admin_event("lrs add", target=f"{args.env}:{endpoint_id}", workspace_id=args.workspace)
    print(endpoint_id)
    return 0


@with_runtime
def cmd_lrs_list(runtime: Runtime, args: argparse.Namespace) -> int:
    from appliance.xapi import outbox

    rows = outbox.list_endpoints(_database(runtime, args).read())
    runtime.admin_event("lrs list", workspace_id=args.workspace)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(
            f"{row['id']}\t{row['url']}\t{row['auth']}\t{'enabled' if row['enabled'] else 'disabled'}"
            f"\tpending {row['pending']}\tdelivered {row['delivered']}\tfailed {row['failed']}"
        )
    return 0


@with_runtime
def cmd_lrs_remove(runtime: Runtime, args: argparse.Namespace) -> int:
    from appliance.xapi import outbox

    try:
        _database(runtime, args).write(lambda w: outbox.remove_endpoint(w, args.id))
    except DomainError as exc:
        raise CliError(str(exc)) from None
    runtime.admin_event("lrs remove", target=f"{args.env}:{args.id}", workspace_id=args.workspace)
    print(f"LRS endpoint {args.id} removed with its queued statements", file=sys.stderr)
    return 0


@with_runtime
def cmd_lrs_log(runtime: Runtime, args: argparse.Namespace) -> int:
    """The delivery log of one endpoint: the latest statements, their status and last error."""
    from appliance.xapi import outbox

    database = _database(runtime, args)
    try:
        outbox.get_endpoint(database.read(), args.id)
    except DomainError as exc:
        raise CliError(str(exc)) from None
    rows = outbox.delivery_log(database.read(), args.id, args.limit)
    runtime.admin_event("lrs log", target=f"{args.env}:{args.id}", workspace_id=args.workspace)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(
            f"{row['created']}\t{row['statement_id']}\t{row['verb']}\t{row['status']}\t"
            f"attempts {row['attempts']}\t{row['last_error'] or ''}"
        )
    return 0


@with_runtime
def cmd_lrs_test(runtime: Runtime, args: argparse.Namespace) -> int:
    """Send one sample statement now (not through the outbox) and say what the LRS answered."""
    from appliance.xapi import outbox
    from appliance.xapi.worker import XAPI_VERSION, LrsClient

    database = _database(runtime, args)
    try:
        endpoint = outbox.get_endpoint(database.read(), args.id)
    except DomainError as exc:
        raise CliError(str(exc)) from None
    base = runtime.settings.base_url
    statement_id = str(uuid.uuid4())
    statement: dict[str, Any] = {
        "id": statement_id,
        "actor": {"objectType": "Agent", "account": {"homePage": base, "name": "appliance-lrs-test"}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced", "display": {"en": "experienced"}},
        "object": {"objectType": "Activity", "id": f"{base}/xapi/activities/lrs-test"},
    }
    client = LrsClient(runtime.settings.webhooks)
    try:
        attempt = client.send(database.name, endpoint, statement_id, json.dumps(statement))
    finally:
        client.close()
    ok = attempt.error is None and attempt.status_code is not None and 200 <= attempt.status_code < 300
    runtime.admin_event("lrs test", target=f"{args.env}:{args.id}", workspace_id=args.workspace)
    outcome = f"HTTP {attempt.status_code}" if attempt.error is None else attempt.error
    print(f"{'OK' if ok else 'FAILED'}: {outcome} in {attempt.duration_ms:.0f} ms (xAPI {XAPI_VERSION})")
    return 0 if ok else 1


def _target(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--workspace", type=int, required=True)
    p.add_argument("--env", choices=["test", "production"], required=True)
    return p


def register(sub: Subparsers[Any]) -> None:
    lrs = group(sub, "lrs", "learning record stores that receive xAPI statements")
    p = _target(command(lrs, "add", cmd_lrs_add, "add an LRS endpoint (secret on stdin)"))
    p.add_argument("--url", required=True, help="the LRS's xAPI base URL (statements go to <url>/statements)")
    p.add_argument("--auth", choices=["basic", "oauth2"], default="basic")
    p.add_argument("--username", required=True, help="Basic user name, or the OAuth2 client id")
    p.add_argument("--token-url", help="OAuth2 client-credentials token endpoint")
    p.add_argument("--scope", help="OAuth2 scope to request")
    _target(command(lrs, "list", cmd_lrs_list, "list LRS endpoints and their queues")).add_argument(
        "--json", action="store_true"
    )
    _target(command(lrs, "remove", cmd_lrs_remove, "remove an LRS endpoint")).add_argument("id", type=int)
    p = _target(command(lrs, "log", cmd_lrs_log, "an LRS endpoint's delivery log"))
    p.add_argument("id", type=int)
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    _target(command(lrs, "test", cmd_lrs_test, "send one sample statement to an LRS endpoint")).add_argument(
        "id", type=int
    )
