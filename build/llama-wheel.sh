#!/usr/bin/env bash
# Build (once) and install llama-cpp-python with portable CPU flags (x86-64-v3, no GGML_NATIVE).
#
# Usage: build/llama-wheel.sh [VENV_DIR]      (default: .venv)
#
# - The wheel is cached outside the repo in ${APPLIANCE_WHEEL_CACHE:-$HOME/.cache/appliance/wheels};
#   when a wheel for the pinned version is already there, the 4-8 minute compile is skipped.
# - The wheel is installed into VENV_DIR unless that venv already has the pinned version.
# - Never build with GGML_NATIVE=ON: such a wheel crashes with SIGILL on CPUs without AVX-512.
set -euo pipefail

VERSION="0.3.36"
VENV="${1:-.venv}"
CACHE="${APPLIANCE_WHEEL_CACHE:-$HOME/.cache/appliance/wheels}"
PY="$VENV/bin/python"

if [[ ! -x "$PY" ]]; then
    echo "llama-wheel: no python at $PY (create the venv first)" >&2
    exit 2
fi

installed="$("$PY" -c 'import importlib.metadata as m
try: print(m.version("llama_cpp_python"))
except m.PackageNotFoundError: print("")' 2>/dev/null || true)"
if [[ "$installed" == "$VERSION" ]]; then
    echo "llama-wheel: llama-cpp-python $VERSION already installed in $VENV"
    exit 0
fi

mkdir -p "$CACHE"
shopt -s nullglob
wheels=("$CACHE"/llama_cpp_python-"$VERSION"-*.whl)
shopt -u nullglob

if [[ ${#wheels[@]} -eq 0 ]]; then
    echo "llama-wheel: building llama-cpp-python $VERSION (portable flags) into $CACHE; takes 4-8 min"
    tmp="$(mktemp -d "$CACHE/.build.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    CMAKE_BUILD_PARALLEL_LEVEL=2 \
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON" \
        "$PY" -m pip wheel --no-cache-dir --no-deps -w "$tmp" "llama-cpp-python==$VERSION"
    # Move atomically so an interrupted build never leaves a half-written wheel in the cache.
    for w in "$tmp"/llama_cpp_python-"$VERSION"-*.whl; do
        mv "$w" "$CACHE/"
    done
    wheels=("$CACHE"/llama_cpp_python-"$VERSION"-*.whl)
else
    echo "llama-wheel: using cached ${wheels[0]}"
fi

# Runtime deps (numpy, jinja2, diskcache, typing-extensions) come from the index as usual.
"$PY" -m pip install "${wheels[0]}"
echo "llama-wheel: installed $(basename "${wheels[0]}") into $VENV"
