"""Split extracted text into chunks of about 1-2k characters along headings and pages.

A chunk starts at a heading (once the current one has some text), is closed before it would pass
`max_chars`, and a block longer than that is cut at sentence or word boundaries. Each chunk keeps
the pages it spans and the heading it sits under, so retrieval and summaries can name them.
For presentations every slide is its own chunk (a slide group is a run of chunks).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from appliance.documents.extract import Block

TARGET = 1500
MAX = 2000


@dataclass
class Chunk:
    seq: int
    page_start: int
    page_end: int
    heading: str
    text: str


def _split_long(text: str, limit: int) -> list[str]:
    pieces: list[str] = []
    sentences = re.split(r"(?<=[.!?])\s+|\n+", text)
    current = ""
    for sentence in sentences:
        while len(sentence) > limit:  # no sentence boundary: cut at a space, or hard
            cut = sentence.rfind(" ", 0, limit)
            cut = cut if cut > limit // 2 else limit
            head, sentence = sentence[:cut].strip(), sentence[cut:].strip()
            if current:
                pieces.append(current)
                current = ""
            pieces.append(head)
        if current and len(current) + 1 + len(sentence) > limit:
            pieces.append(current)
            current = ""
        current = f"{current} {sentence}".strip() if current else sentence
    if current:
        pieces.append(current)
    return [p for p in pieces if p]


def chunk_blocks(
    blocks: list[Block], *, target: int = TARGET, max_chars: int = MAX, per_page: bool = False
) -> list[Chunk]:
    chunks: list[Chunk] = []
    heading = ""
    parts: list[str] = []
    size = 0
    first_page = last_page = 0

    def flush() -> None:
        nonlocal parts, size
        if parts:
            chunks.append(Chunk(len(chunks), first_page, last_page, heading[:300], "\n\n".join(parts)))
        parts, size = [], 0

    for block in blocks:
        new_page = parts and block.page != last_page
        if per_page and new_page:
            flush()
        elif block.heading and size >= 200:
            flush()
        elif new_page and size >= target:
            flush()
        if block.heading:
            if not parts:
                heading = block.text
        for piece in _split_long(block.text, max_chars) if len(block.text) > max_chars else [block.text]:
            if parts and size + len(piece) + 2 > max_chars:
                flush()
            if not parts:
                first_page = block.page
            parts.append(piece)
            size += len(piece) + 2
            last_page = block.page
    flush()
    return chunks
