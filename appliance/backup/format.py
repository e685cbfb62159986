"""The backup root on disk: snapshot names, log segments and their records.

Layout under the backup root (`backup.path`, default `<data dir>/backups`)::

    .lock                                   serialises shipping, snapshots, scrubs and pruning
    <db>/snapshots/<taken µs>-<seq>-v<schema>-g<gen>.snap    SQLCipher copy under backup/snapshot/<gen>
    <db>/log/<first seq>-<created µs>.seg                     AES-256-GCM records under backup/log/<gen>

`<db>` is `control` or `ws<id>-<env>`. A segment starts with a header (magic, JSON naming the
database and the key), then records: `RCD1 | first seq | last seq | last ts | length` followed by
a 12-byte nonce and the AES-256-GCM ciphertext of the zlib'd JSON rows; the AAD is the file header
plus the record header, so records cannot be moved between files or databases. Records are only
ever appended (see `shipping`); a torn tail from a crash is ignored on read and duplicates from a
crash between fsync and delete are skipped by sequence number.
"""

from __future__ import annotations

import json
import re
import secrets
import struct
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from appliance.backup.targets import RestoreError
from appliance.storage import files
from appliance.storage.capture import Change
from appliance.storage.keyring import Keyring

SEGMENT_MAGIC = b"APPLOG1\n"
RECORD_MAGIC = b"RCD1"
RECORD_HEADER = struct.Struct(">4sQQQI")
SNAP_RE = re.compile(r"^(\d{20})-(\d+)-v(\d+)-g(\d+)\.snap$")
SEG_RE = re.compile(r"^(\d{20})-(\d+)\.seg$")


# -- times ----------------------------------------------------------------------------------------
def now_us() -> int:
    return time.time_ns() // 1000


def iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_time(text: str) -> int:
    """ISO-8601 (a naive time is UTC) to microseconds since the epoch."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1_000_000)


# -- key names ------------------------------------------------------------------------------------
def log_key_name(gen: int) -> str:
    return f"backup/log/{gen}"


def snapshot_key_name(gen: int) -> str:
    return f"backup/snapshot/{gen}"


# -- snapshots ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SnapshotInfo:
    path: Path
    taken_us: int
    seq: int
    schema_version: int
    gen: int

    @property
    def key_name(self) -> str:
        return snapshot_key_name(self.gen)


def snapshot_name(taken_us: int, seq: int, schema_version: int, gen: int) -> str:
    return f"{taken_us:020d}-{seq}-v{schema_version}-g{gen}.snap"


def list_snapshots(db_dir: Path) -> list[SnapshotInfo]:
    out = []
    snap_dir = db_dir / "snapshots"
    if snap_dir.is_dir():
        for p in snap_dir.iterdir():
            m = SNAP_RE.match(p.name)
            if m:
                out.append(SnapshotInfo(p, int(m[1]), int(m[2]), int(m[3]), int(m[4])))
    return sorted(out, key=lambda s: s.taken_us)


# -- log segments ---------------------------------------------------------------------------------
@dataclass
class Segment:
    path: Path
    first_seq: int
    created_us: int


def segment_name(first_seq: int, created_us: int) -> str:
    return f"{first_seq:020d}-{created_us}.seg"


def list_segments(db_dir: Path) -> list[Segment]:
    out = []
    log_dir = db_dir / "log"
    if log_dir.is_dir():
        for p in log_dir.iterdir():
            m = SEG_RE.match(p.name)
            if m:
                out.append(Segment(p, int(m[1]), int(m[2])))
    return sorted(out, key=lambda s: (s.first_seq, s.created_us))


def segment_header(db_name: str, key_name: str, created: int) -> bytes:
    body = json.dumps({"db": db_name, "key": key_name, "created": created}, sort_keys=True).encode()
    return SEGMENT_MAGIC + struct.pack(">I", len(body)) + body


def read_header(path: Path) -> tuple[bytes, dict[str, Any]] | None:
    """A segment's file header (the AAD prefix) and its JSON, without reading the records."""
    with open(path, "rb") as f:
        head = f.read(12)
        if head[:8] != SEGMENT_MAGIC or len(head) < 12:
            return None
        body = f.read(struct.unpack(">I", head[8:12])[0])
    return head + body, json.loads(body)


def records_end(path: Path, file_header: bytes) -> int:
    """Where the last whole record of a segment ends, walking the record headers only (nothing
    decrypted): the file size, unless a crash cut the last record short."""
    size = path.stat().st_size
    off = len(file_header)
    with open(path, "rb") as f:
        while off + RECORD_HEADER.size + 12 <= size:
            f.seek(off)
            magic, _first, _last, _ts, ct_len = RECORD_HEADER.unpack(f.read(RECORD_HEADER.size))
            end = off + RECORD_HEADER.size + 12 + ct_len
            if magic != RECORD_MAGIC or end > size:
                break
            off = end
    return off


def encrypt_record(key: bytes, file_header: bytes, rows: list[Change]) -> bytes:
    payload = zlib.compress(json.dumps(rows, separators=(",", ":")).encode(), 6)
    nonce = secrets.token_bytes(12)
    ct_len = len(payload) + 16
    header = RECORD_HEADER.pack(RECORD_MAGIC, rows[0][0], rows[-1][0], max(r[1] for r in rows), ct_len)
    return header + nonce + AESGCM(key).encrypt(nonce, payload, file_header + header)


def as_change(r: Any) -> Change:
    return (int(r[0]), int(r[1]), str(r[2]), str(r[3]), r[4], r[5], r[6])


@dataclass
class SegmentContent:
    header: dict[str, Any]
    file_header: bytes
    records: list[list[Change]] = field(default_factory=list)
    torn_tail: bool = False


def read_segment(path: Path, keyring: Keyring) -> SegmentContent:
    data = path.read_bytes()
    if not data.startswith(SEGMENT_MAGIC) or len(data) < 12:
        raise RestoreError(f"{path}: not a log segment")
    (hlen,) = struct.unpack(">I", data[8:12])
    file_header = data[: 12 + hlen]
    header = json.loads(data[12 : 12 + hlen])
    aead = AESGCM(keyring.get(header["key"]))
    content = SegmentContent(header, file_header)
    off = len(file_header)
    while off < len(data):
        if off + RECORD_HEADER.size + 12 > len(data):
            content.torn_tail = True
            break
        rec_header = data[off : off + RECORD_HEADER.size]
        magic, _first, _last, _ts, ct_len = RECORD_HEADER.unpack(rec_header)
        start = off + RECORD_HEADER.size
        end = start + 12 + ct_len
        if magic != RECORD_MAGIC or end > len(data):
            content.torn_tail = True
            break
        try:
            plain = aead.decrypt(data[start : start + 12], data[start + 12 : end], file_header + rec_header)
        except InvalidTag:
            if end == len(data):  # a half-written last record
                content.torn_tail = True
                break
            raise RestoreError(f"{path}: record at byte {off} fails authentication") from None
        content.records.append([as_change(r) for r in json.loads(zlib.decompress(plain))])
        off = end
    return content


def write_segment(path: Path, file_header: bytes, key: bytes, records: list[list[Change]]) -> None:
    """Write a whole segment (used when scrubbing), atomically and durably."""
    with files.durable_file(path) as f:
        f.write(file_header)
        for rows in records:
            if rows:
                f.write(encrypt_record(key, file_header, rows))
