"""The release bundle: one tar file, verified whole before any of it is used.

Members (regular files only, in this order):
    release.json          {"format": 1, "version": "0.2.0", "released": "2026-12-01T00:00:00Z"}
    appliance             the one-file binary (mode 0755)
    models/manifest.json  the pinned model manifest this release expects
    SHA256SUMS            `<sha256>  <member>` for every member above
    SHA256SUMS.sig        a detached Ed25519 signature over SHA256SUMS (appliance.release.signing)

`verify` reads the tar's headers, refuses any member that is not a plain regular file with a
plain relative name (absolute paths, `..`, symlinks, hard links, devices, directories, duplicates),
checks the signature against the trusted keys, requires that SHA256SUMS lists exactly the other
members, and streams every member into a fresh private directory while hashing it: a flipped byte,
a truncated file, a missing or extra checksum entry or an unknown signer is refused there, before
an upgrade touches the installed binary or the data directory.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appliance.release import signing
from appliance.storage import files

FORMAT = 1
RELEASE = "release.json"
BINARY = "appliance"
MANIFEST = "models/manifest.json"
SUMS = "SHA256SUMS"
SIGNATURE = "SHA256SUMS.sig"
REQUIRED = (RELEASE, BINARY, MANIFEST)
MAX_MEMBER_BYTES = 2 * 1024**3  # the binary is about 64 MB; nothing in a bundle comes near this
MAX_SMALL_BYTES = 1024 * 1024
MAX_MEMBERS = 32  # five today; room for later additions, none for a flood of headers  # release.json, the manifest, the checksums and the signature
SUMS_LINE = re.compile(r"([0-9a-f]{64})  (\S[^\n]*)")
VERSION = re.compile(r"\d+(\.\d+){0,3}")


class BundleError(Exception):
    """The bundle is refused; the message says why. Nothing was changed."""


@dataclass(frozen=True)
class Release:
    version: str
    released: dt.datetime  # UTC
    key_id: str  # the key that signed it
    directory: Path  # the verified members, extracted
    sha256: dict[str, str]

    @property
    def binary(self) -> Path:
        return self.directory / BINARY

    @property
    def manifest(self) -> Path:
        return self.directory / MANIFEST


def version_tuple(version: str) -> tuple[int, ...]:
    if not VERSION.fullmatch(version):
        raise BundleError(f"version {version!r} is not of the form 1.2.3")
    return tuple(int(p) for p in version.split("."))


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def checksums(members: dict[str, bytes | Path]) -> bytes:
    """SHA256SUMS for these members (in this order)."""
    lines = []
    for name, content in members.items():
        digest = hashlib.sha256(content).hexdigest() if isinstance(content, bytes) else _hash_file(content)
        lines.append(f"{digest}  {name}\n")
    return "".join(lines).encode()


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build(
    binary: Path, manifest: Path, version: str, released: dt.datetime, key: Ed25519PrivateKey, output: Path
) -> Path:
    """Write a signed bundle to `output` (a file name; written beside it first, then renamed)."""
    version_tuple(version)
    release = json.dumps({"format": FORMAT, "version": version, "released": iso(released)}, indent=1).encode()
    members: dict[str, bytes | Path] = {RELEASE: release, BINARY: binary, MANIFEST: manifest.read_bytes()}
    sums = checksums(members)
    members[SUMS] = sums
    members[SIGNATURE] = signing.sign(sums, key)
    mtime = int(released.timestamp())
    partial = output.with_name(output.name + ".partial")
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = mtime, 0, 0, "root", "root"
            info.mode = 0o755 if name == BINARY else 0o644
            if isinstance(content, bytes):
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
            else:
                info.size = content.stat().st_size
                with open(content, "rb") as f:
                    tar.addfile(info, f)
    partial.chmod(0o644)  # a release is published, not a secret (the CLI's umask is 077)
    files.durable_replace(partial, output)
    return output


def _check_member(member: tarfile.TarInfo, seen: set[str]) -> None:
    name = member.name
    if member.issym() or member.islnk():
        kind = "a symbolic link" if member.issym() else "a hard link"
        raise BundleError(f"member {name!r} is {kind}; a bundle holds regular files only")
    if not member.isreg():
        raise BundleError(f"member {name!r} is not a regular file; a bundle holds regular files only")
    if name.startswith("/") or "\\" in name or not name:
        raise BundleError(f"member {name!r} has an absolute or malformed path")
    parts = PurePosixPath(name).parts
    if ".." in parts or "." in parts or str(PurePosixPath(name)) != name:
        raise BundleError(f"member {name!r} leaves the bundle's directory (path traversal)")
    if name in seen:
        raise BundleError(f"member {name!r} appears twice")
    limit = MAX_SMALL_BYTES if name != BINARY else MAX_MEMBER_BYTES
    if member.size > limit:
        raise BundleError(f"member {name!r} is {member.size} bytes, more than a bundle ever holds")
    seen.add(name)


def _read_small(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    f = tar.extractfile(member)
    if f is None:
        raise BundleError(f"member {member.name!r} cannot be read")
    data = f.read(MAX_SMALL_BYTES + 1)
    if len(data) != member.size:
        raise BundleError("the bundle is truncated")
    return data


def _parse_sums(text: bytes) -> dict[str, str]:
    sums: dict[str, str] = {}
    for number, line in enumerate(text.decode("utf-8", errors="replace").splitlines(), 1):
        match = SUMS_LINE.fullmatch(line)
        if match is None or match.group(2) in sums:
            raise BundleError(f"{SUMS} line {number} is malformed or repeats a member")
        sums[match.group(2)] = match.group(1)
    return sums


def _parse_release(data: bytes) -> tuple[str, dt.datetime]:
    try:
        info = json.loads(data)
        if info.get("format") != FORMAT:
            raise BundleError(f"{RELEASE}: format {info.get('format')!r} is not {FORMAT}; a newer tool made it")
        version = str(info["version"])
        released = dt.datetime.fromisoformat(str(info["released"]).replace("Z", "+00:00"))
    except (ValueError, KeyError, AttributeError, TypeError) as exc:
        raise BundleError(f"{RELEASE} is malformed ({type(exc).__name__})") from None
    if released.tzinfo is None:
        raise BundleError(f"{RELEASE}: the release date has no time zone")
    version_tuple(version)
    return version, released.astimezone(dt.UTC)


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, directory: Path) -> str:
    """Stream one member into `directory` (a new file, never through a link) and return its sha256."""
    source = tar.extractfile(member)
    if source is None:
        raise BundleError(f"member {member.name!r} cannot be read")
    path = directory / member.name
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    digest = hashlib.sha256()
    size = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o700 if member.name == BINARY else 0o600)
    with os.fdopen(fd, "wb") as out:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
            out.write(block)
            size += len(block)
    if size != member.size:
        raise BundleError("the bundle is truncated")
    return digest.hexdigest()


def _ends_properly(bundle: Path, offset: int) -> bool:
    """A whole tar ends with two zero blocks; one cut at a member boundary does not."""
    with open(bundle, "rb") as f:
        f.seek(offset)
        return f.read(2 * tarfile.BLOCKSIZE) == bytes(2 * tarfile.BLOCKSIZE)


def verify(bundle: Path, trusted: dict[str, Ed25519PublicKey], directory: Path) -> Release:
    """Check `bundle` and extract it into `directory` (new, empty, private). BundleError if anything
    is wrong; then `directory` holds only unverified leftovers for the caller to delete."""
    if not trusted:
        raise BundleError("this appliance trusts no release key (appliance/release/trusted/ is empty)")
    try:
        size = bundle.stat().st_size
        with tarfile.open(bundle, "r:") as tar:
            members = tar.getmembers()
            if len(members) > MAX_MEMBERS:
                raise BundleError(f"the bundle has {len(members)} members; a bundle has {len(REQUIRED) + 2}")
            seen: set[str] = set()
            for member in members:
                if member.offset_data + member.size > size:  # tarfile reads a cut-off tail as the end
                    raise BundleError(f"{bundle.name} is damaged or truncated (member {member.name!r} is cut off)")
                _check_member(member, seen)
            if not _ends_properly(bundle, tar.offset):
                raise BundleError(f"{bundle.name} is damaged or truncated (no end-of-archive marker)")
            by_name = {m.name: m for m in members}
            if SIGNATURE not in by_name:
                raise BundleError(f"the bundle is not signed (no {SIGNATURE})")
            if SUMS not in by_name:
                raise BundleError(f"the bundle has no {SUMS}")
            sums_data = _read_small(tar, by_name[SUMS])
            try:
                key_id = signing.verify(sums_data, _read_small(tar, by_name[SIGNATURE]), trusted)
            except signing.SignatureError as exc:
                raise BundleError(str(exc)) from None
            sums = _parse_sums(sums_data)
            contents = [m.name for m in members if m.name not in {SUMS, SIGNATURE}]
            for name in contents:
                if name not in sums:
                    raise BundleError(f"member {name!r} has no entry in {SUMS}")
            for name in sums:
                if name not in by_name:
                    raise BundleError(f"{SUMS} lists {name!r}, which the bundle does not contain")
            for name in REQUIRED:
                if name not in sums:
                    raise BundleError(f"the bundle has no {name}")
            for name in contents:
                got = _extract(tar, by_name[name], directory)
                if got != sums[name]:
                    raise BundleError(f"member {name!r} does not match its checksum (damaged or altered)")
    except (tarfile.TarError, EOFError) as exc:
        raise BundleError(f"{bundle.name} is not a readable bundle: damaged or truncated ({exc})") from None
    except OSError as exc:
        raise BundleError(f"{bundle}: {exc.strerror or exc}") from None
    version, released = _parse_release((directory / RELEASE).read_bytes())
    try:
        json.loads((directory / MANIFEST).read_bytes())
    except ValueError:
        raise BundleError(f"{MANIFEST} is not JSON") from None
    return Release(version, released, key_id, directory, sums)
