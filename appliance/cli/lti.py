"""LTI 1.3 platforms and the tool's keys: `lti add|list|remove|jwks|rotate-key` (docs/lti.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from appliance.cli.common import CliError, Subparsers, command, group, with_runtime
from appliance.errors import DomainError
from appliance.runtime import Runtime


def _keyset(args: argparse.Namespace) -> str | None:
    if args.keyset_file is None:
        return None
    from appliance.lti.platforms import MAX_KEYSET_BYTES

    raw = sys.stdin.buffer.read(MAX_KEYSET_BYTES + 1) if args.keyset_file == "-" else None
    if raw is None:
        path = Path(args.keyset_file)
        if not path.is_file():
            raise CliError(f"{args.keyset_file}: no such file")
        with path.open("rb") as handle:
            raw = handle.read(MAX_KEYSET_BYTES + 1)
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise CliError("the keyset file is not UTF-8 text (a JWKS or a PEM public key)") from None


@with_runtime
def cmd_lti_add(runtime: Runtime, args: argparse.Namespace) -> int:
    from appliance.lti import platforms

    try:
        platform_id = platforms.add(
            runtime.control,
            workspace_id=args.workspace,
            environment=args.env,
            issuer=args.issuer,
            client_id=args.client_id,
            deployment_ids=args.deployment_id,
            auth_login_url=args.auth_login_url,
            auth_token_url=args.auth_token_url,
            auth_audience=args.auth_audience,
            keyset=_keyset(args),
            keyset_url=args.keyset_url,
        )
    except DomainError as exc:
        raise CliError(str(exc)) from None
    runtime.admin_event("lti add", target=f"lti-platform:{platform_id}", workspace_id=args.workspace)
    print(platform_id)
    return 0


@with_runtime
def cmd_lti_list(runtime: Runtime, args: argparse.Namespace) -> int:
    from appliance.lti import platforms

    rows = [platforms.public_view(r) for r in platforms.list_platforms(runtime.control, args.workspace)]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        print(
            f"{r['id']}\tworkspace {r['workspace']} {r['environment']}\t{r['issuer']}\tclient {r['clientId']}"
            f"\tdeployments {','.join(r['deploymentIds'])}\tkeys {','.join(r['keys']) or r['keysetUrl']}"
        )
    return 0


@with_runtime
def cmd_lti_remove(runtime: Runtime, args: argparse.Namespace) -> int:
    from appliance.lti import platforms

    try:
        row = platforms.get(runtime.control, args.platform_id)
    except DomainError as exc:
        raise CliError(str(exc)) from None
    platforms.remove(runtime.control, args.platform_id)
    runtime.admin_event("lti remove", target=f"lti-platform:{args.platform_id}", workspace_id=row["workspace_id"])
    print(f"LTI platform {args.platform_id} removed", file=sys.stderr)
    return 0


@with_runtime
def cmd_lti_jwks(runtime: Runtime, args: argparse.Namespace) -> int:
    from appliance.lti import keys

    print(json.dumps(keys.jwks(runtime.keyring), indent=1))
    return 0


@with_runtime
def cmd_lti_rotate_key(runtime: Runtime, args: argparse.Namespace) -> int:
    from appliance.lti import keys

    key = keys.rotate(runtime.keyring)
    runtime.admin_event("lti rotate-key", target=f"lti-key:{key.kid}")
    print(f"new tool key {key.kid}; /lti/jwks serves it and the previous one", file=sys.stderr)
    return 0


def register(sub: Subparsers[Any]) -> None:
    lti = group(sub, "lti", "LTI 1.3 platforms (LMSs) and the tool's signing keys")
    p = command(lti, "add", cmd_lti_add, "register an LMS platform for a workspace environment")
    p.add_argument("--workspace", type=int, required=True)
    p.add_argument("--env", choices=["test", "production"], default="production")
    p.add_argument("--issuer", required=True, help="the platform's issuer (iss)")
    p.add_argument("--client-id", required=True, help="the client id the platform gave this tool")
    p.add_argument("--deployment-id", action="append", required=True, help="a deployment id (repeatable)")
    p.add_argument("--auth-login-url", required=True, help="the platform's OIDC authentication request URL")
    p.add_argument("--auth-token-url", required=True, help="the platform's OAuth2 access token URL")
    p.add_argument("--auth-audience", help="the token URL's audience, when the platform names one")
    keys_given = p.add_mutually_exclusive_group(required=True)
    keys_given.add_argument("--keyset-file", help="the platform's public keys: a JWKS or PEM file ('-': stdin)")
    keys_given.add_argument("--keyset-url", help="a keyset URL the platform serves on the local network")
    p = command(lti, "list", cmd_lti_list, "list registered platforms")
    p.add_argument("--workspace", type=int)
    p.add_argument("--json", action="store_true")
    p = command(lti, "remove", cmd_lti_remove, "remove a registered platform")
    p.add_argument("platform_id", type=int)
    command(lti, "jwks", cmd_lti_jwks, "print the tool's public keys (what /lti/jwks serves)")
    command(lti, "rotate-key", cmd_lti_rotate_key, "make a new tool signing key (the previous one stays published)")
