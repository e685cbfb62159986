"""appliance.ai.cpu_build: the AVX-512 libraries only where the CPU has every flag they were built for,
and the setting really decides which libraries a process loads (checked in fresh processes against
llama.cpp's own report of its build)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from appliance import config
from appliance.ai import cpu_build
from appliance.ai.cpu_build import AVX512_FLAGS, choose, cpu_flags

REPO = Path(__file__).resolve().parents[2]
ZEN4 = AVX512_FLAGS | {"avx2", "fma", "f16c"}


@pytest.mark.parametrize(("setting", "flags", "installed", "expected"), [
    ("auto", ZEN4, True, "avx512"),
    ("auto", ZEN4 - {"avx512_bf16"}, True, "portable"),  # one flag missing: SIGILL otherwise
    ("auto", ZEN4, False, "portable"),
    ("auto", frozenset(), True, "portable"),
    ("portable", ZEN4, True, "portable"),
    ("avx512", ZEN4, True, "avx512"),
])
def test_choose(setting: str, flags: frozenset[str], installed: bool, expected: str) -> None:
    assert choose(setting, flags, installed) == expected


def test_asking_for_avx512_where_it_cannot_run_is_refused_with_what_is_missing() -> None:
    with pytest.raises(ValueError, match="lacks avx512_vnni"):
        choose("avx512", ZEN4 - {"avx512_vnni"}, True)
    with pytest.raises(ValueError, match="not installed"):
        choose("avx512", ZEN4, False)
    with pytest.raises(ValueError, match="must be one of"):
        choose("native", ZEN4, True)


def test_cpu_flags_reads_the_kernels_flags_line(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512f avx512_vnni\n\n"
                    "processor\t: 1\nflags\t\t: fpu avx2 avx512f avx512_vnni\n")
    assert cpu_flags(info) == {"fpu", "avx2", "avx512f", "avx512_vnni"}
    assert cpu_flags(tmp_path / "absent") == frozenset()


def test_the_setting_is_checked_when_the_configuration_is_read(tmp_path: Path) -> None:
    (tmp_path / config.CONFIG_FILE).write_text('[ai]\ncpu_build = "native"\n')
    with pytest.raises(config.ConfigError, match=r"ai\.cpu_build must be one of auto, portable, avx512"):
        config.load(tmp_path, environ={})
    assert config.load(tmp_path, environ={"APPLIANCE_AI_CPU_BUILD": "portable"}).ai.cpu_build == "portable"


def _loaded_in_a_fresh_process(setting: str, library_path: Path | None = None) -> dict[str, Any]:
    code = ("import json, re, sys; from appliance.ai import cpu_build; chosen = cpu_build.select(sys.argv[1]); "
            "import llama_cpp; maps = open('/proc/self/maps').read().splitlines(); "
            "folders = sorted({l.split()[-1].rsplit('/', 2)[-2] for l in maps if re.search(r'/lib(llama|ggml[-a-z]*)[.]so', l)}); "
            "print(json.dumps({'chosen': chosen, 'loaded': cpu_build.loaded(), 'folders': folders, "
            "'report': llama_cpp.llama_print_system_info().decode()}))")
    env = {k: v for k, v in os.environ.items() if k != "LLAMA_CPP_LIB_PATH"}
    if library_path is not None:
        env["LD_LIBRARY_PATH"] = str(library_path)
    out = subprocess.run([sys.executable, "-c", code, setting], cwd=REPO, env=env, check=True,
                         capture_output=True, text=True, timeout=60).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def test_auto_loads_the_avx512_libraries_exactly_where_the_cpu_has_them() -> None:
    assert cpu_build.avx512_library() is not None, "build/llama-wheel.sh installs them"
    expected = "avx512" if AVX512_FLAGS <= cpu_flags() else "portable"
    result = _loaded_in_a_fresh_process("auto")
    assert (result["chosen"], result["loaded"]) == (expected, expected), result["report"]
    assert ("AVX512 = 1" in result["report"]) == (expected == "avx512")
    # llama.cpp's libraries all come from one set (the binary's test checks the same: tests/test_binary.py)
    assert result["folders"] == ["lib-avx512" if expected == "avx512" else "lib"]


def test_portable_loads_the_portable_libraries_on_any_cpu() -> None:
    result = _loaded_in_a_fresh_process("portable")
    assert (result["chosen"], result["loaded"]) == ("portable", "portable")
    assert "AVX2 = 1" in result["report"] and "AVX512" not in result["report"]
    assert result["folders"] == ["lib"]


def test_portable_is_loaded_even_where_the_library_path_leads_to_the_avx512_set(tmp_path: Path) -> None:
    """The one-file binary: LD_LIBRARY_PATH is its unpacked folder, whose links (by SONAME) lead to
    whichever set PyInstaller collected last. One build's led to lib-avx512/: the portable
    libllama got the AVX-512 libggml-cpu, and the model process died of SIGILL on a CPU without it."""
    avx512 = cpu_build.avx512_library()
    assert avx512 is not None, "build/llama-wheel.sh installs them"
    for soname in ("libggml-base.so.0", "libggml-cpu.so.0", "libggml.so.0", "libllama.so.0"):
        (tmp_path / soname).symlink_to(avx512 / soname)
    result = _loaded_in_a_fresh_process("portable", library_path=tmp_path)
    assert (result["chosen"], result["loaded"]) == ("portable", "portable"), result["report"]
    assert result["folders"] == ["lib"]


def test_an_engine_asked_for_avx512_on_a_cpu_without_it_is_unavailable_with_the_reason() -> None:
    """The CPU is the one part a test cannot swap: a fresh process reports no AVX-512 flags."""
    code = ("import json; from appliance.ai import cpu_build; cpu_build.cpu_flags = lambda *a: frozenset({'avx2'}); "
            "from appliance.ai.local import LocalEngine; "
            "from appliance.ai.models import REPO_MODELS_DIR; "
            "e = LocalEngine('smollm2-135m-instruct', models_dir=REPO_MODELS_DIR, cpu_build='avx512'); "
            "e.wait_ready(60); import sys; "
            "print(json.dumps({**e.info(), 'llama_cpp_loaded': 'llama_cpp.llama_cpp' in sys.modules}))")
    env = {k: v for k, v in os.environ.items() if k != "LLAMA_CPP_LIB_PATH"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True,
                         capture_output=True, text=True, timeout=60).stdout
    info = json.loads(out.strip().splitlines()[-1])
    assert info["status"] == "unavailable" and "lacks avx512" in info["error"], info
    assert not info["llama_cpp_loaded"]  # refused before llama.cpp was loaded, rather than SIGILL


def test_loaded_is_none_while_another_thread_is_still_importing_llama_cpp() -> None:
    """The model process answers info (with the build) while its worker thread imports llama_cpp;
    asking the half-made module for its report raised AttributeError in that thread (seen in
    tests/storage/test_disk_full.py's server log)."""
    code = ("import sys, types; from appliance.ai import cpu_build; "
            "sys.modules['llama_cpp.llama_cpp'] = types.ModuleType('llama_cpp.llama_cpp'); "
            "print(cpu_build.loaded())")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True, text=True,
                         timeout=60).stdout
    assert out.strip() == "None"
