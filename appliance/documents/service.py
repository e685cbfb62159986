"""Document operations for the headless routes, the builder and the jobs.

`ingest` reads a file in a sandboxed child process, keeps the original encrypted in the object store
under the document's own subject key, and writes the record and its chunks (FTS5-indexed by
triggers) in one transaction. If anything fails after the file was stored, its subject is shredded:
nothing is left half-written. `delete_document` is a hard delete (appliance.backup.erasure): rows,
index, change log and snapshots scrubbed, and the subject key shredded so every copy of the file is
noise.
"""

from __future__ import annotations

import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import sqlite_utils

from appliance.backup import erasure
from appliance.documents.chunking import chunk_blocks
from appliance.documents.extract import DocumentError, Limits
from appliance.documents.sandbox import extract_isolated
from appliance.errors import DomainError, Invalid, TooLarge, Unavailable, Unsupported, not_found
from appliance.security.audit import now_iso
from appliance.storage.database import fetch_all, fetch_one, last_id
from appliance.storage.objects import ObjectStore

if TYPE_CHECKING:
    from appliance.runtime import Runtime

SUBJECT_KIND = "document"
MAX_FILENAME = 255


def to_wire(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "filename": row["filename"],
        "type": row["type"],
        "title": row["title"],
        "pages": row["pages"],
        "chars": row["chars"],
        "bytes": row["bytes"],
        "owner": row["owner"],
        "created": row["created"],
    }


def limits_of(runtime: Runtime) -> Limits:
    return Limits.from_settings(runtime.settings.documents)


def _safe_filename(filename: str) -> str:
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip()
    return name[:MAX_FILENAME] or "document"


# the reader answers across a process boundary with a status number (appliance.documents.extract);
# the domain error each one is
READER_REFUSALS: dict[int, type[DomainError]] = {413: TooLarge, 415: Unsupported, 422: Invalid, 503: Unavailable}


def ingest(
    runtime: Runtime,
    workspace_id: int,
    environment: str,
    filename: str,
    data: bytes,
    *,
    owner: str | None = None,
) -> dict[str, Any]:
    """Store, extract, chunk and index one uploaded file; returns the document record.

    Raises TooLarge, Unsupported (unsupported or lying type) or Invalid (malformed, encrypted,
    zip bomb, XXE, too many pages, no text, took too long), appliance.errors."""
    settings = runtime.settings.documents
    limits = limits_of(runtime)
    name = _safe_filename(filename)
    if len(data) > limits.max_bytes:
        raise TooLarge(f"The file is larger than the document limit of {limits.max_bytes} bytes")
    database = runtime.environment(workspace_id, environment)
    key = secrets.token_hex(16)
    store = ObjectStore(runtime)
    # The original is encrypted and stored on this thread while the reader (a child process, on
    # the other core) extracts the text: the upload waits for the slower of the two, not both.
    # A file the reader refuses costs a shred of what was stored (nothing is kept).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="document-reader") as pool:
        reading = pool.submit(
            extract_isolated, data, name, limits,
            timeout=settings.extract_timeout_seconds, memory_mb=settings.extract_memory_mb,
        )
        object_id = store.put(workspace_id, environment, SUBJECT_KIND, key, data)  # cleans up after itself
        try:
            extracted = reading.result()
        except BaseException as exc:
            store.shred_subject(workspace_id, environment, SUBJECT_KIND, key)
            if isinstance(exc, DocumentError):
                raise READER_REFUSALS.get(exc.status, Invalid)(exc.message) from None
            raise
    chunks = chunk_blocks(extracted.blocks, per_page=extracted.type == "pptx")

    def save(w: sqlite_utils.Database) -> dict[str, Any]:
        cursor = w.execute(
            """INSERT INTO documents (key, filename, type, title, pages, chars, bytes, object_id, owner, created)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [key, name, extracted.type, extracted.title, extracted.pages, extracted.chars, len(data),
             object_id, owner, now_iso()],
        )
        document_id = last_id(cursor)
        w.conn.executemany(  # one statement for all chunks (the FTS triggers index each row)
            "INSERT INTO document_chunks (document_id, seq, page_start, page_end, heading, text) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(document_id, c.seq, c.page_start, c.page_end, c.heading, c.text) for c in chunks],
        )
        row = fetch_one(w, "SELECT * FROM documents WHERE id = ?", [document_id])
        assert row is not None
        return to_wire(row)

    try:
        return database.write(save)
    except BaseException:
        store.shred_subject(workspace_id, environment, SUBJECT_KIND, key)
        raise


def get_row(db: sqlite_utils.Database, document_id: int, owner: str | None = None) -> dict[str, Any]:
    row = fetch_one(db, "SELECT * FROM documents WHERE id = ?", [document_id])
    if row is None or (owner is not None and row["owner"] != owner):
        raise not_found("Document")
    return row


def get_document(
    runtime: Runtime, workspace_id: int, environment: str, document_id: int, owner: str | None = None
) -> dict[str, Any]:
    return to_wire(get_row(runtime.environment(workspace_id, environment).read(), document_id, owner))


def list_documents(
    runtime: Runtime, workspace_id: int, environment: str, owner: str | None = None
) -> list[dict[str, Any]]:
    db = runtime.environment(workspace_id, environment).read()
    if owner is None:
        rows = fetch_all(db, "SELECT * FROM documents ORDER BY id DESC")
    else:
        rows = fetch_all(db, "SELECT * FROM documents WHERE owner = ? ORDER BY id DESC", [owner])
    return [to_wire(r) for r in rows]


def delete_document(
    runtime: Runtime, workspace_id: int, environment: str, document_id: int, owner: str | None = None
) -> None:
    """Hard delete: the rows, their index entries and history, and the original (key shredded)."""
    row = get_row(runtime.environment(workspace_id, environment).read(), document_id, owner)

    def delete_rows(w: sqlite_utils.Database) -> None:
        w.execute("DELETE FROM document_sections WHERE document_id = ?", [document_id])
        w.execute("DELETE FROM document_chunks WHERE document_id = ?", [document_id])
        w.execute("DELETE FROM documents WHERE id = ?", [document_id])

    erasure.erase(runtime.backups, workspace_id, environment, SUBJECT_KIND, row["key"], delete_rows)


def original(runtime: Runtime, workspace_id: int, environment: str, document_id: int) -> bytes:
    """The decrypted original file (never sent to the model; for download by its author)."""
    row = get_row(runtime.environment(workspace_id, environment).read(), document_id)
    return ObjectStore(runtime).get(workspace_id, environment, row["object_id"])


def chunks(db: sqlite_utils.Database, document_id: int) -> list[dict[str, Any]]:
    return fetch_all(
        db,
        "SELECT id, seq, page_start, page_end, heading, text FROM document_chunks "
        "WHERE document_id = ? ORDER BY seq",
        [document_id],
    )


_TERM = re.compile(r"[^\W_]{2,}", re.UNICODE)


def fts_query(text: str, max_terms: int = 32) -> str:
    """A safe FTS5 query: the text's distinct words, each quoted, OR-ed (no operators pass through)."""
    seen: list[str] = []
    for word in _TERM.findall(text.lower()):
        if word not in seen and word not in STOPWORDS:
            seen.append(word)
        if len(seen) >= max_terms:
            break
    return " OR ".join(f'"{w}"' for w in seen)


def search_db(
    db: sqlite_utils.Database, document_id: int | None, query: str, limit: int = 5
) -> list[dict[str, Any]]:
    match = fts_query(query)
    if not match:
        return []
    where = "document_chunks_fts MATCH ?"
    params: list[Any] = [match]
    if document_id is not None:
        where += " AND c.document_id = ?"
        params.append(document_id)
    params.append(max(1, min(100, limit)))
    return fetch_all(
        db,
        f"""SELECT c.id, c.document_id, c.seq, c.page_start, c.page_end, c.heading, c.text,
                   bm25(document_chunks_fts) AS score
            FROM document_chunks_fts JOIN document_chunks c ON c.id = document_chunks_fts.rowid
            WHERE {where} ORDER BY score LIMIT ?""",
        params,
    )


def search(
    runtime: Runtime, workspace_id: int, environment: str, document_id: int | None, query: str, limit: int = 5
) -> list[dict[str, Any]]:
    """The document's chunks that best match `query` (FTS5 bm25, best first; all documents when
    `document_id` is None)."""
    db = runtime.environment(workspace_id, environment).read()
    if document_id is not None:
        get_row(db, document_id)
    return [
        {
            "documentId": r["document_id"],
            "chunk": r["seq"],
            "pages": [r["page_start"], r["page_end"]],
            "heading": r["heading"],
            "text": r["text"],
            "score": round(-float(r["score"]), 4),
        }
        for r in search_db(db, document_id, query, limit)
    ]


STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers him his how i if in into is it its itself just me more most my no nor not now
    of off on once only or other our ours out over own same she should so some such than that the their
    theirs them then there these they this those through to too under until up very was we were what when
    where which while who whom why will with would you your yours also may must use used using one two
    each every many much well like""".split()
)
