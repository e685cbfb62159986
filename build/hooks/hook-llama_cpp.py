"""PyInstaller hook for llama-cpp-python, used by build/binary.sh (--additional-hooks-dir build/hooks).

What `--collect-all llama_cpp` does (without it the binary fails with "Shared library with base name
'llama' not found": the lib/*.so are loaded through ctypes, which analysis cannot see), minus:
- llama_cpp.server, llama-cpp-python's own OpenAI server (fastapi, uvicorn, ...; not installed, not used);
- the third copy of each shared library. The wheel holds libX.so (what ctypes opens by base name),
  libX.so.0 (the SONAME the other libraries link against) and libX.so.0.N.M (opened by nothing) as
  three regular files, since a wheel cannot hold symlinks.
Both library sets are collected, `lib/` and the AVX-512 `lib-avx512/` (build/llama-wheel.sh), the
latter with the VERSION file that appliance.ai.cpu_build checks before it loads them.
"""

import re
from pathlib import Path

from PyInstaller.utils.hooks import collect_dynamic_libs, collect_submodules, copy_metadata, get_package_paths

hiddenimports = collect_submodules("llama_cpp", filter=lambda name: not name.startswith("llama_cpp.server"))
binaries = [(src, dest) for src, dest in collect_dynamic_libs("llama_cpp") if not re.search(r"\.so\.\d+\.\d+", src)]
datas = copy_metadata("llama_cpp_python")
_stamp = Path(get_package_paths("llama_cpp")[1]) / "lib-avx512" / "VERSION"
if _stamp.is_file():
    datas.append((str(_stamp), "llama_cpp/lib-avx512"))
