"""Type detection and text extraction for uploaded documents (PDF, DOCX, PPTX, TXT, Markdown).

Everything here is pure: bytes in, `Extracted` out, or `DocumentError(status, message)`. It runs in a
child process with a deadline and a memory cap (appliance.documents.sandbox), so a hostile file can
cost at most that process. The real type comes from the content (magic bytes, zip members), never
from the file name; a name whose extension says otherwise is refused (415).

OOXML archives are checked before anything is decompressed (entry count, declared uncompressed
size, expansion ratio) and read with a hard cap per member; their XML is parsed by defusedxml with
DTDs forbidden, which refuses XXE and entity-expansion ("billion laughs") documents outright.
"""

from __future__ import annotations

import io
import math
import posixpath
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError
from defusedxml.ElementTree import fromstring as _safe_fromstring

TYPES = ("pdf", "docx", "pptx", "text", "markdown")
EXTENSIONS = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".pptx": "pptx",
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
}
CHARS_PER_PAGE = 3000  # pages of a text-like document are counted as this many characters

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
P = "{http://schemas.openxmlformats.org/presentationml/2006/main}"
R = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
EP = "{http://schemas.openxmlformats.org/officeDocument/2006/extended-properties}"


class DocumentError(Exception):
    """A document the appliance refuses: `status` is the HTTP status (413, 415 or 422)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 32 * 1024 * 1024
    max_pages: int = 1000
    max_chars: int = 5_000_000
    max_zip_entries: int = 2000
    max_uncompressed_bytes: int = 256 * 1024 * 1024
    max_expansion_ratio: float = 100.0

    @classmethod
    def from_settings(cls, settings: Any) -> Limits:
        return cls(**{k: getattr(settings, k) for k in cls.__dataclass_fields__ if hasattr(settings, k)})


@dataclass
class Block:
    """A run of text from one page (PDF page, slide, or estimated page of a text document)."""

    text: str
    page: int
    heading: bool = False


@dataclass
class Extracted:
    type: str
    pages: int
    blocks: list[Block] = field(default_factory=list)
    title: str = ""

    @property
    def chars(self) -> int:
        return sum(len(b.text) for b in self.blocks)


# -- detection ------------------------------------------------------------------------------------
def extension_type(filename: str) -> str | None:
    """The type a file name claims (None: no extension, or one we don't know)."""
    name = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    if "." not in name.strip("."):
        return None
    ext = "." + name.rsplit(".", 1)[-1].lower()
    if ext not in EXTENSIONS:
        raise DocumentError(415, f"Unsupported file type {ext!r}: upload a PDF, DOCX, PPTX, TXT or Markdown file")
    return EXTENSIONS[ext]


def detect(data: bytes, filename: str = "") -> str:
    """The real type of `data`; refuses unknown content and a name that lies about it (415)."""
    claimed = extension_type(filename)
    head = data[:1024]
    if not data:
        raise DocumentError(422, "The file is empty")
    if b"%PDF-" in head:
        real = "pdf"
    elif data.startswith(b"PK\x03\x04"):
        real = _zip_kind(data)
    elif data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        raise DocumentError(
            415,
            "This is a legacy (.doc/.ppt) or password-protected Office file; save it as an unprotected "
            ".docx or .pptx and upload that",
        )
    elif _looks_like_text(data):
        real = "markdown" if claimed == "markdown" or (claimed is None and _looks_like_markdown(data)) else "text"
    else:
        raise DocumentError(415, "Unrecognised file content: upload a PDF, DOCX, PPTX, TXT or Markdown file")
    if claimed is not None and claimed != real and {claimed, real} != {"text", "markdown"}:
        raise DocumentError(
            415, f"The file name says {claimed.upper()} but its content is {real.upper()}; rename it and retry"
        )
    return real


def _zip_kind(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, ValueError, OSError):
        raise DocumentError(422, "The file is a damaged ZIP/Office archive") from None
    if "word/document.xml" in names:
        return "docx"
    if "ppt/presentation.xml" in names:
        return "pptx"
    raise DocumentError(415, "This ZIP archive is not a Word (.docx) or PowerPoint (.pptx) document")


def _looks_like_text(data: bytes) -> bool:
    sample = data[:65536]
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 4:  # a character cut at the sample's end is fine
            return False
    return True


def _looks_like_markdown(data: bytes) -> bool:
    return re.search(rb"(?m)^#{1,6} \S", data[:65536]) is not None


# -- extraction -----------------------------------------------------------------------------------
def extract(data: bytes, filename: str, limits: Limits) -> Extracted:
    if len(data) > limits.max_bytes:
        raise DocumentError(413, f"The file is larger than the document limit of {limits.max_bytes} bytes")
    kind = detect(data, filename)
    if kind == "pdf":
        result = extract_pdf(data, limits)
    elif kind == "docx":
        result = extract_docx(data, limits)
    elif kind == "pptx":
        result = extract_pptx(data, limits)
    else:
        result = extract_text(data, kind)
    result.blocks = [b for b in result.blocks if b.text.strip()]
    if result.pages > limits.max_pages:
        raise DocumentError(422, f"The document has {result.pages} pages; the limit is {limits.max_pages}")
    if result.chars > limits.max_chars:
        raise DocumentError(
            422, f"The document holds {result.chars} characters of text; the limit is {limits.max_chars}"
        )
    if not result.blocks:
        raise DocumentError(
            422, "No text could be extracted from this document (a scanned PDF needs OCR first)"
        )
    return result


def _clean(text: str) -> str:
    text = text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"[ \t\u00a0]+", " ", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def extract_pdf(data: bytes, limits: Limits) -> Extracted:
    import pypdf
    from pypdf.errors import PdfReadError, PyPdfError

    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:  # an owner-password-only PDF opens with the empty user password, as in any viewer
                opened = bool(reader.decrypt(""))
            except Exception:
                opened = False
            if not opened:
                raise DocumentError(422, "The PDF is password-protected; remove the password and upload it again")
        count = len(reader.pages)
        if count > limits.max_pages:
            raise DocumentError(422, f"The PDF has {count} pages; the limit is {limits.max_pages}")
        blocks: list[Block] = []
        total = 0
        for number, page in enumerate(reader.pages, start=1):
            text = _clean(page.extract_text() or "")
            total += len(text)
            if total > limits.max_chars:
                raise DocumentError(422, f"The PDF holds more than {limits.max_chars} characters of text")
            if text:
                blocks.append(Block(text, number))
        title = ""
        try:
            meta = reader.metadata
            title = str(meta.title or "") if meta is not None else ""
        except Exception:  # noqa: S110 - a damaged info dictionary only loses the title
            pass
    except DocumentError:
        raise
    except MemoryError:
        raise DocumentError(422, "The PDF needs too much memory to read (a decompression bomb?)") from None
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError,
            RecursionError, OSError, AssertionError, ZeroDivisionError):
        raise DocumentError(422, "The PDF is damaged or malformed and could not be read") from None
    if count == 0:
        raise DocumentError(422, "The PDF has no pages")
    return Extracted("pdf", count, blocks, title[:200])


def extract_text(data: bytes, kind: str) -> Extracted:
    text = _clean(data.decode("utf-8-sig", errors="replace"))
    blocks: list[Block] = []
    offset = 0
    for para in re.split(r"\n\s*\n", text):
        para = para.strip()
        if not para:
            continue
        page = offset // CHARS_PER_PAGE + 1
        offset += len(para) + 2
        if kind == "markdown":
            lines = para.split("\n")
            rest: list[str] = []
            for line in lines:
                m = re.match(r"^(#{1,6})\s+(.*)$", line)
                if m:
                    if rest:
                        blocks.append(Block("\n".join(rest), page))
                        rest = []
                    blocks.append(Block(m.group(2).strip().rstrip("#").strip(), page, heading=True))
                else:
                    rest.append(line)
            if rest:
                blocks.append(Block("\n".join(rest), page))
        else:
            blocks.append(Block(para, page))
    pages = max(1, math.ceil(len(text) / CHARS_PER_PAGE))
    title = next((b.text for b in blocks if b.heading), "")
    return Extracted(kind, pages, blocks, title[:200])


# -- OOXML ----------------------------------------------------------------------------------------
class _Archive:
    """A zip opened with bomb checks before anything is inflated, and capped reads."""

    def __init__(self, data: bytes, limits: Limits) -> None:
        self.limits = limits
        try:
            self.zf = zipfile.ZipFile(io.BytesIO(data))
            infos = self.zf.infolist()
        except (zipfile.BadZipFile, ValueError, OSError):
            raise DocumentError(422, "The file is a damaged ZIP/Office archive") from None
        if len(infos) > limits.max_zip_entries:
            raise DocumentError(
                422, f"The archive has {len(infos)} entries; the limit is {limits.max_zip_entries}"
            )
        total = sum(i.file_size for i in infos)
        packed = sum(i.compress_size for i in infos) or 1
        if total > limits.max_uncompressed_bytes:
            raise DocumentError(
                422,
                f"The archive would expand to {total} bytes; the limit is {limits.max_uncompressed_bytes} "
                "(a zip bomb?)",
            )
        if total > 1024 * 1024 and total / packed > limits.max_expansion_ratio:
            raise DocumentError(
                422,
                f"The archive expands {total / packed:.0f} times; the limit is {limits.max_expansion_ratio:.0f} "
                "(a zip bomb?)",
            )
        self.infos = {i.filename: i for i in infos}
        self.read_total = 0

    def read(self, name: str) -> bytes:
        info = self.infos.get(name)
        if info is None:
            raise DocumentError(422, f"The Office document is missing its part {name}")
        if info.flag_bits & 0x1:
            raise DocumentError(422, "The Office archive is encrypted")
        cap = min(info.file_size, self.limits.max_uncompressed_bytes - self.read_total)
        try:
            with self.zf.open(info) as f:
                data = f.read(cap + 1)
        except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError, RuntimeError):
            raise DocumentError(422, "The Office archive is damaged") from None
        except MemoryError:
            raise DocumentError(422, "The Office archive needs too much memory to read (a zip bomb?)") from None
        if len(data) > cap:
            raise DocumentError(422, "An archive member expands beyond its declared or allowed size (a zip bomb?)")
        self.read_total += len(data)
        return data

    def has(self, name: str) -> bool:
        return name in self.infos

    def xml(self, name: str) -> Element:
        return parse_xml(self.read(name))


def parse_xml(data: bytes) -> Element:
    """Parse XML with DTDs, entities and external references all refused."""
    try:
        root: Element = _safe_fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise DocumentError(
            422, "The document's XML declares a DTD or entities (XXE / entity expansion); refused"
        ) from None
    except (ParseError, ValueError, RecursionError):
        raise DocumentError(422, "The document's XML is malformed") from None
    return root


def _app_pages(archive: _Archive, tag: str) -> int | None:
    if not archive.has("docProps/app.xml"):
        return None
    try:
        node = archive.xml("docProps/app.xml").find(f"{EP}{tag}")
        return int(node.text or "") if node is not None else None
    except (DocumentError, ValueError):
        return None


def _paragraph_text(p: Element) -> str:
    parts: list[str] = []
    for node in p.iter():
        if node.tag == f"{W}t" and node.text:
            parts.append(node.text)
        elif node.tag == f"{W}tab":
            parts.append("\t")
        elif node.tag in (f"{W}br", f"{W}cr"):
            parts.append("\n")
    return "".join(parts)


def extract_docx(data: bytes, limits: Limits) -> Extracted:
    archive = _Archive(data, limits)
    body = archive.xml("word/document.xml")
    blocks: list[Block] = []
    chars = 0
    for p in body.iter(f"{W}p"):
        text = _clean(_paragraph_text(p))
        if not text:
            continue
        style = p.find(f"{W}pPr/{W}pStyle")
        style_name = (style.get(f"{W}val") or "") if style is not None else ""
        heading = style_name.lower().startswith(("heading", "title")) or bool(
            re.fullmatch(r"[Hh]\d", style_name)
        )
        page = chars // CHARS_PER_PAGE + 1
        chars += len(text)
        if chars > limits.max_chars:
            raise DocumentError(422, f"The document holds more than {limits.max_chars} characters of text")
        blocks.append(Block(text, page, heading))
    pages = _app_pages(archive, "Pages") or max(1, math.ceil(chars / CHARS_PER_PAGE))
    title = next((b.text for b in blocks if b.heading), "")
    return Extracted("docx", pages, blocks, title[:200])


def _rels(archive: _Archive, part: str) -> dict[str, str]:
    folder, name = posixpath.split(part)
    rels_name = posixpath.join(folder, "_rels", f"{name}.rels")
    if not archive.has(rels_name):
        return {}
    out: dict[str, str] = {}
    for rel in archive.xml(rels_name).iter(f"{REL}Relationship"):
        target = rel.get("Target") or ""
        if rel.get("TargetMode") == "External":
            continue
        resolved = posixpath.normpath(posixpath.join(folder, target)) if not target.startswith("/") else target[1:]
        out[rel.get("Id") or ""] = resolved
    return out


def extract_pptx(data: bytes, limits: Limits) -> Extracted:
    archive = _Archive(data, limits)
    presentation = archive.xml("ppt/presentation.xml")
    rels = _rels(archive, "ppt/presentation.xml")
    slide_parts = [
        rels[sid.get(f"{R}id") or ""]
        for sid in presentation.iter(f"{P}sldId")
        if rels.get(sid.get(f"{R}id") or "", "").startswith("ppt/slides/")
    ]
    if len(slide_parts) > limits.max_pages:
        raise DocumentError(422, f"The presentation has {len(slide_parts)} slides; the limit is {limits.max_pages}")
    blocks: list[Block] = []
    chars = 0
    for number, part in enumerate(slide_parts, start=1):
        slide = archive.xml(part)
        title_parts: list[str] = []
        body_parts: list[str] = []
        for shape in slide.iter(f"{P}sp"):
            ph = shape.find(f"{P}nvSpPr/{P}nvPr/{P}ph")
            is_title = ph is not None and (ph.get("type") or "") in ("title", "ctrTitle")
            for para in shape.iter(f"{A}p"):
                text = "".join(t.text or "" for t in para.iter(f"{A}t")).strip()
                if text:
                    (title_parts if is_title else body_parts).append(text)
        for frame in slide.iter(f"{P}graphicFrame"):  # tables
            for para in frame.iter(f"{A}p"):
                text = "".join(t.text or "" for t in para.iter(f"{A}t")).strip()
                if text:
                    body_parts.append(text)
        title = _clean(" ".join(title_parts)) or f"Slide {number}"
        body = _clean("\n".join(body_parts))
        chars += len(title) + len(body)
        if chars > limits.max_chars:
            raise DocumentError(422, f"The presentation holds more than {limits.max_chars} characters of text")
        blocks.append(Block(title, number, heading=True))
        if body:
            blocks.append(Block(body, number))
    if not slide_parts:
        raise DocumentError(422, "The presentation has no slides")
    title = blocks[0].text if blocks else ""
    return Extracted("pptx", len(slide_parts), blocks, title[:200])
