"""Workspaces and their API keys: `workspace create|list|entitlement|origins`, `key create|list|revoke`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from appliance.cli.common import CliError, Subparsers, command, group, with_runtime
from appliance.runtime import Runtime
from appliance.workspaces import service


@with_runtime
def cmd_workspace_create(runtime: Runtime, args: argparse.Namespace) -> int:
    workspace_id = runtime.create_workspace(args.name)
    runtime.admin_event("workspace create", target=f"workspace:{workspace_id}", workspace_id=workspace_id)
    print(workspace_id)
    return 0


@with_runtime
def cmd_workspace_list(runtime: Runtime, args: argparse.Namespace) -> int:
    for w in service.list_workspaces(runtime.control):
        off = [k for k, v in w["entitlements"].items() if not v]
        print(f"{w['id']}\t{w['name']}\t{w['created']}\tentitlements off: {', '.join(off) or 'none'}")
    return 0


@with_runtime
def cmd_workspace_entitlement(runtime: Runtime, args: argparse.Namespace) -> int:
    service.set_entitlement(runtime.control, args.workspace, args.entitlement, args.state == "on")
    runtime.admin_event(f"entitlement {args.entitlement} {args.state}", workspace_id=args.workspace)
    print(f"workspace {args.workspace}: {args.entitlement} {args.state}")
    return 0


@with_runtime
def cmd_workspace_origins(runtime: Runtime, args: argparse.Namespace) -> int:
    from appliance.embeds import origins

    try:
        result = origins.set_origins(
            runtime.control, args.workspace, args.env, args.add or [], args.remove or []
        )
    except origins.OriginError as exc:
        raise CliError(str(exc)) from None
    if args.add or args.remove:
        runtime.admin_event(
            f"origins {args.env}", target=f"workspace:{args.workspace}", workspace_id=args.workspace
        )
    print(f"workspace {args.workspace} {args.env}: " + (" ".join(result) if result else "(none configured)"))
    return 0


@with_runtime
def cmd_key_create(runtime: Runtime, args: argparse.Namespace) -> int:
    key_id, header = service.create_api_key(runtime.control, runtime.pepper, args.workspace, args.mode)
    runtime.admin_event("key create", target=key_id, workspace_id=args.workspace)
    print(header)
    print(f"(key id {key_id}; the value above is shown only once)", file=sys.stderr)
    return 0


@with_runtime
def cmd_key_list(runtime: Runtime, args: argparse.Namespace) -> int:
    for k in service.list_api_keys(runtime.control, args.workspace):
        state = f"revoked {k['revoked']}" if k["revoked"] else "active"
        print(
            f"{k['key_id']}\tworkspace {k['workspace_id']}\t{k['mode']}\t...{k['hint']}\t{k['created']}\t{state}"
        )
    return 0


@with_runtime
def cmd_key_revoke(runtime: Runtime, args: argparse.Namespace) -> int:
    service.revoke_api_key(runtime.control, args.key_id)
    runtime.admin_event("key revoke", target=args.key_id)
    print(f"revoked {args.key_id}")
    return 0


def register_workspace(sub: Subparsers[Any]) -> None:
    ws = group(sub, "workspace", "workspaces")
    command(ws, "create", cmd_workspace_create, "create a workspace").add_argument("--name", required=True)
    command(ws, "list", cmd_workspace_list, "list workspaces")
    p = command(ws, "entitlement", cmd_workspace_entitlement, "switch an entitlement on or off")
    p.add_argument("--workspace", type=int, required=True)
    p.add_argument("entitlement", choices=service.ENTITLEMENTS)
    p.add_argument("state", choices=["on", "off"])
    p = command(
        ws, "origins", cmd_workspace_origins, "list, add or remove host origins allowed to frame embeds"
    )
    p.add_argument("--workspace", type=int, required=True)
    p.add_argument("--env", choices=["test", "production"], required=True)
    p.add_argument("--add", action="append", metavar="ORIGIN")
    p.add_argument("--remove", action="append", metavar="ORIGIN")


def register_key(sub: Subparsers[Any]) -> None:
    key = group(sub, "key", "API keys")
    p = command(key, "create", cmd_key_create, "create an API key (printed once)")
    p.add_argument("--workspace", type=int, required=True)
    p.add_argument("--mode", choices=["test", "production"], required=True)
    p = command(key, "list", cmd_key_list, "list API keys (never their values)")
    p.add_argument("--workspace", type=int)
    command(key, "revoke", cmd_key_revoke, "revoke an API key").add_argument("key_id")
