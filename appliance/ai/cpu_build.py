"""Which llama.cpp libraries a process loads: the portable x86-64-v3 set, or the AVX-512 set.

Contract:
- `build/llama-wheel.sh` installs llama-cpp-python with the portable libraries in the package's
  `lib/` (AVX2, FMA, F16C, BMI2: they run on any x86-64 CPU of the last ten years) and, on
  x86-64, a second set built with AVX-512 in `lib-avx512/` beside it (`AVX512_FLAGS` below: the
  compiler flags of that build, named as the kernel names them in /proc/cpuinfo), with a `VERSION`
  file: a set left behind by another llama-cpp-python version is never loaded. A library built
  with instructions the CPU lacks dies with SIGILL at its first use, so the AVX-512 set is only
  chosen when the CPU reports every one of those flags.
- The setting `ai.cpu_build` (`auto`, `portable`, `avx512`) is applied by `select()` before the
  process first imports llama_cpp, through llama-cpp-python's own `LLAMA_CPP_LIB_PATH`. A process
  loads one set for its life: the first `select()` decides, later calls return what it chose. An
  operator's own `LLAMA_CPP_LIB_PATH` wins over the setting.
- `auto` takes the AVX-512 set when the CPU has the flags and the set is installed; `avx512` on a
  CPU without them is refused with an error rather than crashing the model process.
- `loaded()` says which set the process really runs, from llama.cpp's own report of the features
  it was built with (`llama_print_system_info`), for the engine's info and the benchmarks.

Why: on the project machine (AMD EPYC with AVX-512) the AVX-512 set reads a prompt in 0.77x the
time and decodes at the same speed (bench/cpu_builds.py), and a 10-screen course took 0.81x the
time in an interleaved A/B (docs/ai.md "Measured").
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.metadata
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from appliance.config import CPU_BUILDS

# GGML_AVX512 (f, cd, vl, dq, bw), GGML_AVX512_VBMI, GGML_AVX512_VNNI, GGML_AVX512_BF16: must match
# the CMAKE_ARGS of the AVX-512 build in build/llama-wheel.sh
AVX512_FLAGS = frozenset({"avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw", "avx512vbmi",
                          "avx512_vnni", "avx512_bf16"})
AVX512_DIR = "lib-avx512"

_chosen: str | None = None


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU feature flags the kernel reports (and has enabled); empty where there is no cpuinfo."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def _package_dir() -> Path | None:
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def portable_library() -> Path | None:
    package = _package_dir()
    return package / "lib" if package else None


def avx512_library() -> Path | None:
    """The installed AVX-512 set, if it belongs to the installed llama-cpp-python."""
    package = _package_dir()
    if package is None or not (package / AVX512_DIR / "libllama.so").is_file():
        return None
    try:
        stamp = (package / AVX512_DIR / "VERSION").read_text().strip()
        return package / AVX512_DIR if stamp == importlib.metadata.version("llama_cpp_python") else None
    except (OSError, importlib.metadata.PackageNotFoundError):
        return None


def choose(setting: str, flags: frozenset[str], avx512_installed: bool) -> str:
    """The build for ``setting`` on a CPU with ``flags``: "portable" or "avx512"."""
    if setting not in CPU_BUILDS:
        raise ValueError(f"ai.cpu_build must be one of {', '.join(CPU_BUILDS)}, not {setting!r}")
    missing = sorted(AVX512_FLAGS - flags)
    if setting == "avx512":
        if missing:
            raise ValueError(f"ai.cpu_build = avx512, but this CPU lacks {', '.join(missing)}")
        if not avx512_installed:
            raise ValueError("ai.cpu_build = avx512, but the AVX-512 libraries are not installed "
                             "(run build/llama-wheel.sh)")
        return "avx512"
    if setting == "auto" and not missing and avx512_installed:
        return "avx512"
    return "portable"


def select(setting: str = "auto") -> str:
    """Point llama-cpp-python at the chosen libraries; call before the first import of llama_cpp.

    Returns the build chosen ("portable", "avx512", or "override" when the operator set
    ``LLAMA_CPP_LIB_PATH``). Once llama_cpp is loaded the choice is fixed: the first one is returned.
    """
    global _chosen
    if _chosen is not None:
        return _chosen
    if "llama_cpp.llama_cpp" in sys.modules:
        _chosen = loaded() or "portable"
    elif os.environ.get("LLAMA_CPP_LIB_PATH"):
        _chosen = "override"
    else:
        library = avx512_library()
        chosen = choose(setting, cpu_flags(), library is not None)
        folder = library if chosen == "avx512" else portable_library()
        if folder is not None and (folder / "libllama.so").is_file():
            try:
                _preload(folder)
            except OSError as exc:  # a damaged install: the engine is unavailable and says why
                raise ValueError(f"the {chosen} llama.cpp libraries in {folder} cannot be loaded: {exc}") from exc
        if chosen == "avx512":
            os.environ["LLAMA_CPP_LIB_PATH"] = str(library)
        _chosen = chosen
    return _chosen


def try_select(setting: str) -> str | None:
    """``select(setting)``; None, or why the setting cannot be honoured on this machine."""
    try:
        select(setting)
    except ValueError as exc:
        return str(exc)
    return None


def _preload(library: Path) -> None:
    """Load the set's ggml libraries by path, each after what it needs. libllama then finds them
    loaded (the dynamic loader matches a needed library by its SONAME) instead of searching: in
    the one-file binary LD_LIBRARY_PATH points at the unpacked folder, which is searched before the
    libraries' own RUNPATH ($ORIGIN), and whose top-level links lead to one of the two sets,
    whichever PyInstaller collected last. Both choices are loaded this way: a build whose links led
    to lib-avx512/ mapped the AVX-512 libggml-cpu under the portable libllama and died of SIGILL on
    a CPU without AVX-512 (seen in tests/test_binary.py on such a machine)."""
    for name in ("libggml-base.so", "libggml-cpu.so", "libggml.so"):
        ctypes.CDLL(str(library / name), mode=ctypes.RTLD_GLOBAL)


def import_llama(name: str = "llama_cpp", setting: str = "auto") -> Any:
    """``importlib.import_module(name)`` for a llama_cpp module, after ``select(setting)``."""
    select(setting)
    return importlib.import_module(name)


def loaded() -> str | None:
    """The set this process runs ("avx512" or "portable"), or None before llama_cpp is loaded.
    Safe from any thread: while the engine's worker is still importing the module (another
    thread asking for the engine's info meanwhile), it is None."""
    module = sys.modules.get("llama_cpp.llama_cpp")
    report = getattr(module, "llama_print_system_info", None)  # None until the import has finished
    if report is None:
        return None
    return "avx512" if "AVX512 = 1" in report().decode(errors="replace") else "portable"
