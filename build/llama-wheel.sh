#!/usr/bin/env bash
# Build (once) and install llama-cpp-python with portable CPU flags (x86-64-v3, no GGML_NATIVE), and on
# x86-64 a second set of its libraries built with AVX-512, which the engine loads where the CPU has it.
#
# Usage: build/llama-wheel.sh [VENV_DIR]      (default: .venv)
#
# - The wheels are cached outside the repo in ${APPLIANCE_WHEEL_CACHE:-$HOME/.cache/appliance/wheels}
#   (the AVX-512 one in its avx512/ folder); when a wheel for the pinned version is already there,
#   its 4-8 minute compile is skipped.
# - The portable wheel is installed into VENV_DIR unless that venv already has the pinned version.
# - The AVX-512 wheel's shared libraries are copied into the installed package's lib-avx512/, beside
#   the portable lib/, with a VERSION file naming the llama-cpp-python version they belong to (appliance/ai/cpu_build.py chooses between them at run time; its AVX512_FLAGS
#   must match AVX512_ARGS below). Compiling them needs no AVX-512 CPU; running them does.
# - Never build with GGML_NATIVE=ON: such a wheel crashes with SIGILL on CPUs without the build
#   machine's instructions.
set -euo pipefail

VERSION="0.3.36"
VENV="${1:-.venv}"
CACHE="${APPLIANCE_WHEEL_CACHE:-$HOME/.cache/appliance/wheels}"
PY="$VENV/bin/python"
PORTABLE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
AVX512_ARGS="$PORTABLE_ARGS -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON"

# build_wheel DIR CMAKE_ARGS: the pinned wheel into DIR, unless one is there; prints its path
build_wheel() {
    local dir="$1" args="$2" tmp w
    mkdir -p "$dir"
    shopt -s nullglob
    local wheels=("$dir"/llama_cpp_python-"$VERSION"-*.whl)
    shopt -u nullglob
    if [[ ${#wheels[@]} -eq 0 ]]; then
        echo "llama-wheel: building llama-cpp-python $VERSION ($args) into $dir; takes 4-8 min" >&2
        tmp="$(mktemp -d "$dir/.build.XXXXXX")"
        CMAKE_BUILD_PARALLEL_LEVEL=2 CMAKE_ARGS="$args" \
            "$PY" -m pip wheel --no-cache-dir --no-deps -w "$tmp" "llama-cpp-python==$VERSION" >&2
        # Move atomically so an interrupted build never leaves a half-written wheel in the cache.
        for w in "$tmp"/llama_cpp_python-"$VERSION"-*.whl; do
            mv "$w" "$dir/"
        done
        rm -rf "$tmp"
        wheels=("$dir"/llama_cpp_python-"$VERSION"-*.whl)
    else
        echo "llama-wheel: using cached ${wheels[0]}" >&2
    fi
    echo "${wheels[0]}"
}

# install_avx512: the AVX-512 build's shared libraries into the installed package's lib-avx512/
install_avx512() {
    [[ "$(uname -m)" == "x86_64" ]] || return 0
    local package target wheel tmp
    package="$("$PY" -c 'import importlib.util as u; print(next(iter(u.find_spec("llama_cpp").submodule_search_locations)))')"
    target="$package/lib-avx512"
    if [[ -f "$target/libllama.so" && "$(cat "$target/VERSION" 2>/dev/null)" == "$VERSION" ]]; then
        echo "llama-wheel: AVX-512 libraries already in $target"
        return 0
    fi
    wheel="$(build_wheel "$CACHE/avx512" "$AVX512_ARGS")"
    tmp="$(mktemp -d)"
    "$PY" -m zipfile -e "$wheel" "$tmp"
    rm -rf "$target.tmp" && mkdir -p "$target.tmp"
    cp "$tmp"/llama_cpp/lib/*.so* "$target.tmp/"
    echo "$VERSION" > "$target.tmp/VERSION"  # libraries of another version than the package are never loaded
    rm -rf "$tmp" "$target"
    mv "$target.tmp" "$target"
    echo "llama-wheel: AVX-512 libraries installed into $target"
}

if [[ ! -x "$PY" ]]; then
    echo "llama-wheel: no python at $PY (create the venv first)" >&2
    exit 2
fi

installed="$("$PY" -c 'import importlib.metadata as m
try: print(m.version("llama_cpp_python"))
except m.PackageNotFoundError: print("")' 2>/dev/null || true)"
if [[ "$installed" == "$VERSION" ]]; then
    echo "llama-wheel: llama-cpp-python $VERSION already installed in $VENV"
else
    wheel="$(build_wheel "$CACHE" "$PORTABLE_ARGS")"
    # Runtime deps (numpy, jinja2, diskcache, typing-extensions) come from the index as usual.
    "$PY" -m pip install "$wheel"
    echo "llama-wheel: installed $(basename "$wheel") into $VENV"
fi
install_avx512
