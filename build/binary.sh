#!/usr/bin/env bash
# Build the one-file executable build/dist/appliance with PyInstaller (entry: appliance.cli:main).
#
# Usage: bash build/binary.sh [--force]          (run from anywhere; `make binary` calls it)
#
# - PyInstaller is pinned below and installed into the venv ($APPLIANCE_VENV, default .venv) if missing.
# - The vendored web assets (appliance/server/static/**) are bundled as data, at the same relative path,
#   so `Path(__file__).parent / "static"` resolves inside the unpacked binary.
# - sqlcipher3 needs no hook: its `_sqlite3` extension (SQLCipher statically linked) is found by analysis.
# - Idempotent: a stamp (sha256 of everything that goes into the build: appliance/**, this script,
#   build/hooks/*, models/manifest.json, pyproject.toml, the installed distributions and their versions,
#   llama-cpp-python's included) sits next to the binary; when it matches, the build is skipped.
#   --force (or APPLIANCE_BINARY_FORCE=1) rebuilds anyway.
# - The on-box AI engine is bundled: build/hooks/hook-llama_cpp.py does what `--collect-all llama_cpp`
#   does (its ctypes-loaded lib/*.so are invisible to analysis otherwise: "Shared library with base name
#   'llama' not found") without llama_cpp.server and the duplicate .so copies; numpy, jinja2 and
#   diskcache, which llama_cpp imports, are found by analysis. llama-cpp-python must be installed in the
#   venv (build/llama-wheel.sh: the portable AVX2/FMA/F16C build, GGML_NATIVE=OFF, so the binary runs on
#   any x86-64-v3 CPU, plus the AVX-512 set in lib-avx512/, loaded only where the CPU has it:
#   appliance/ai/cpu_build.py); its version and the AVX-512 set's are in the stamp.
#   The binary carries the build host's libgomp/libstdc++ and needs its glibc or newer: build on the oldest
#   target OS. The model files stay outside, in the models dir (docs/ai.md).
# - models/manifest.json (the pinned manifest) is bundled, so `appliance model list|verify|add` work.
# - appliance/release/trusted/*.pub (the release public keys) are bundled: `appliance upgrade` trusts them.
# - The document reader is the binary itself: the entry script below runs it for the hidden first
#   argument `_document-reader` (appliance/documents/sandbox.py), before the CLI is imported; so is the
#   model process, for `_model-host` (appliance/ai/process.py, docs/ai.md "Model process").
set -euo pipefail
shopt -s inherit_errexit

PYINSTALLER_VERSION="6.22.3"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${APPLIANCE_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
WORK="$ROOT/build/work"
DIST="$ROOT/build/dist"
BINARY="$DIST/appliance"
STAMP="$DIST/.appliance.stamp"
# Not on the server's import path at run time: test and build tools, llama-cpp-python's own OpenAI server
# (the appliance has its own routes), and polyfactory/faker (litestar imports them only for OpenAPI
# `create_examples`, which the app leaves off).
EXCLUDES=(llama_cpp.server polyfactory faker tkinter _tkinter IPython pytest _pytest mypy ruff PyInstaller)
FORCE="${APPLIANCE_BINARY_FORCE:-0}"
[[ "${1:-}" == "--force" ]] && FORCE=1

if [[ ! -x "$PY" ]]; then
    echo "binary: no python at $PY (run 'make deps' or 'make test' first)" >&2
    exit 2
fi
if ! "$PY" -c 'import llama_cpp' 2>/dev/null; then
    echo "binary: llama-cpp-python is not installed in $VENV (run 'bash build/llama-wheel.sh $VENV')" >&2
    exit 2
fi

# One build at a time (several test runs may share this tree); the lock is released on exit.
mkdir -p "$WORK" "$DIST"
exec 9>"$DIST/.build.lock"
flock 9

installed="$("$PY" -c 'import importlib.metadata as m
try: print(m.version("pyinstaller"))
except m.PackageNotFoundError: print("")')"
if [[ "$installed" != "$PYINSTALLER_VERSION" ]]; then
    echo "binary: installing pyinstaller==$PYINSTALLER_VERSION into $VENV"
    "$PY" -m pip install --quiet --prefer-binary "pyinstaller==$PYINSTALLER_VERSION"
fi

# Everything that changes the output. File list sorted, byte contents hashed; caches are skipped.
stamp_value() {
    (
        cd "$ROOT"
        find appliance -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | LC_ALL=C sort -z |
            xargs -0 sha256sum
        sha256sum build/binary.sh build/hooks/*.py pyproject.toml models/manifest.json
        "$PY" -c 'import importlib.metadata as m, sys
print(sys.version)
for d in sorted(str(x.metadata["Name"]) + "==" + x.version for x in m.distributions()): print(d)
import importlib.util, pathlib  # the AVX-512 libraries beside llama_cpp (build/llama-wheel.sh) are bundled too
stamp = pathlib.Path(next(iter(importlib.util.find_spec("llama_cpp").submodule_search_locations))) / "lib-avx512" / "VERSION"
print("lib-avx512", stamp.read_text().strip() if stamp.is_file() else "none")'
        printf '%s\n' "${EXCLUDES[@]}"
    ) | sha256sum | cut -d' ' -f1
}

want="$(stamp_value)"
if [[ "$FORCE" != 1 && -x "$BINARY" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    echo "binary: $BINARY is up to date (nothing under appliance/ changed); --force rebuilds"
    exit 0
fi

entry="$WORK/appliance_entry.py"
cat >"$entry" <<'EOF'
import sys

if sys.argv[1:2] == ["_document-reader"]:  # appliance.documents.sandbox.READER_ARG: the sandboxed reader
    from appliance.documents.sandbox import child_entry

    sys.exit(child_entry())
if sys.argv[1:2] == ["_model-host"]:  # appliance.ai.process.HOST_ARG: the model process
    from appliance.ai.process import child_entry as model_entry

    sys.exit(model_entry())

from appliance.cli import main

if __name__ == "__main__":
    sys.exit(main())
EOF

args=(
    --onefile --clean --noconfirm --log-level WARN
    --name appliance
    --distpath "$WORK/dist" --workpath "$WORK" --specpath "$WORK"
    --paths "$ROOT"
    --add-data "$ROOT/appliance/server/static:appliance/server/static"
    --add-data "$ROOT/appliance/embeds/web:appliance/embeds/web"
    --add-data "$ROOT/appliance/admin/console/static:appliance/admin/console/static"  # the console's stylesheet
    --add-data "$ROOT/appliance/ai/tts_worker.py:appliance/ai"  # run by the TTS venv's python, by path
    --add-data "$ROOT/models/manifest.json:models"  # <_MEIPASS>/models: where appliance.ai.models looks
    --add-data "$ROOT/appliance/release/trusted:appliance/release/trusted"  # the release keys upgrades trust
    --add-data "$ROOT/appliance/images/tabler:appliance/images/tabler"  # the illustration library (icons.json)
    --additional-hooks-dir "$ROOT/build/hooks"
    --hidden-import llama_cpp  # imported lazily (appliance.ai.local), so analysis must be told
    --collect-submodules appliance.embeds
    --collect-submodules appliance.server
    --collect-submodules appliance.headless
    --hidden-import sqlcipher3.dbapi2
    --copy-metadata litestar
)
for m in "${EXCLUDES[@]}"; do args+=(--exclude-module "$m"); done

echo "binary: building $BINARY with PyInstaller $PYINSTALLER_VERSION"
rm -f "$STAMP"
start=$SECONDS
(cd "$ROOT" && "$PY" -m PyInstaller "${args[@]}" "$entry")
# Smoke check: the frozen program starts and imports the CLI and storage; then a rename, so a running
# binary is never overwritten in place and build/dist/appliance is never half-written.
"$WORK/dist/appliance" --version >/dev/null
mv -f "$WORK/dist/appliance" "$BINARY"
echo "$want" >"$STAMP"
size=$(stat -c %s "$BINARY")
echo "binary: built $BINARY ($((size / 1024 / 1024)) MB, $size bytes) in $((SECONDS - start)) s"
