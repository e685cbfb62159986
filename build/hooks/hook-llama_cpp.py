"""PyInstaller hook for llama-cpp-python, used by build/binary.sh (--additional-hooks-dir build/hooks).

What `--collect-all llama_cpp` does (without it the binary fails with "Shared library with base name
'llama' not found": the lib/*.so are loaded through ctypes, which analysis cannot see), minus:
- llama_cpp.server, llama-cpp-python's own OpenAI server (fastapi, uvicorn, ...; not installed, not used);
- the third copy of each shared library. The wheel holds libX.so (what ctypes opens by base name),
  libX.so.0 (the SONAME the other libraries link against) and libX.so.0.N.M (opened by nothing) as
  three regular files, since a wheel cannot hold symlinks.
"""

import re

from PyInstaller.utils.hooks import collect_dynamic_libs, collect_submodules, copy_metadata

hiddenimports = collect_submodules("llama_cpp", filter=lambda name: not name.startswith("llama_cpp.server"))
binaries = [(src, dest) for src, dest in collect_dynamic_libs("llama_cpp") if not re.search(r"\.so\.\d+\.\d+", src)]
datas = copy_metadata("llama_cpp_python")
