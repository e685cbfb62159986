"""The pieces without a server: detection, extraction limits, chunking, section plans, slide groups,
the data fence, support scores, and the reader's deadline."""

from __future__ import annotations

import itertools

import pytest

from appliance.documents import course
from appliance.documents.chunking import chunk_blocks
from appliance.documents.extract import Block, DocumentError, Limits, detect, extract
from appliance.documents.sandbox import extract_isolated
from tests.documents import fixtures as fx


def test_detection_uses_content_not_the_name() -> None:
    assert detect(fx.make_pdf([["x"]]), "") == "pdf"
    assert detect(fx.make_docx(), "file") == "docx"
    assert detect(fx.make_pptx(), "deck.PPTX") == "pptx"
    assert detect(b"# Title\n\ntext", "") == "markdown"
    assert detect(b"# Title\n\ntext", "notes.txt") == "text"
    assert detect("Überschrift".encode(), "a.md") == "markdown"
    with pytest.raises(DocumentError) as info:
        detect(fx.make_pptx(), "deck.docx")
    assert info.value.status == 415


def test_archive_limits() -> None:
    with pytest.raises(DocumentError, match="entries"):
        extract(fx.make_docx(extra={f"x/{i}.xml": b"<a/>" for i in range(30)}), "a.docx", Limits(max_zip_entries=10))
    with pytest.raises(DocumentError, match="expand to"):
        extract(fx.zip_bomb_docx(4), "a.docx", Limits(max_uncompressed_bytes=2 * 1024 * 1024))
    with pytest.raises(DocumentError, match="pages"):
        extract(fx.long_pdf(30), "a.pdf", Limits(max_pages=20))
    with pytest.raises(DocumentError) as info:
        extract(fx.long_pdf(3), "a.pdf", Limits(max_bytes=100))
    assert info.value.status == 413


def test_chunks_follow_headings_and_pages_and_stay_small() -> None:
    blocks = [Block("Intro", 1, True), Block("a " * 300, 1), Block("Second", 2, True), Block("b " * 2000, 2)]
    chunks = chunk_blocks(blocks)
    assert chunks[0].heading == "Intro" and chunks[1].heading == "Second"
    assert all(len(c.text) <= 2000 for c in chunks) and len(chunks) >= 3
    pdf = extract(fx.long_pdf(120), "a.pdf", Limits())
    pages = chunk_blocks(pdf.blocks)
    assert pages[0].page_start == 1 and pages[-1].page_end == 120
    assert all(1000 <= len(c.text) <= 2000 for c in pages[:-1])
    assert all(b.page_start == a.page_end + 1 for a, b in itertools.pairwise(pages))


def test_section_plans_cover_every_chunk_in_order() -> None:
    chunks = [{"text": "x" * n, "seq": i} for i, n in enumerate([1500, 1400, 1600, 300, 2000, 1500, 1200] * 5)]
    for cap in (1, 3, 4, 16):
        groups = course.plan_sections(chunks, 4000, cap)
        assert 1 <= len(groups) <= cap
        assert [c["seq"] for g in groups for c in g] == list(range(len(chunks)))


def test_condense_gives_every_chunk_a_share() -> None:
    texts = [f"Part {i}. " + "word " * 400 for i in range(10)]
    out = course.condense(texts, 3000)
    assert len(out) <= 3000 and all(f"Part {i}." in out for i in range(10))


def test_slide_groups() -> None:
    slides = [{"heading": t, "text": t + ("\n\n" + "\n".join(b) if b else ""), "page_start": i + 1,
               "page_end": i + 1} for i, (t, b) in enumerate(fx.DEFAULT_SLIDES)]
    groups = course.slide_groups(slides, None)
    assert [[s["page_start"] for s in g] for g in groups] == [[1, 2, 3], [4], [5, 6, 7]]
    assert [len(g) for g in course.slide_groups(slides, 2)] == [3, 4]
    assert len(course.slide_groups(slides * 20, None)) <= 25


def test_document_text_cannot_close_the_data_fence() -> None:
    fenced = course.fence_safe(fx.INJECTION_TEXT)
    assert "</source" not in fenced.lower() and "<source" not in fenced.lower()
    assert "IGNORE PREVIOUS INSTRUCTIONS" in fenced  # kept as data, visible to the model as text


def test_the_reader_has_a_deadline_and_recovers() -> None:
    with pytest.raises(DocumentError, match="longer than"):
        extract_isolated(fx.long_pdf(120), "a.pdf", Limits(), timeout=0.001)
    assert extract_isolated(fx.make_docx(), "a.docx", Limits(), timeout=30).type == "docx"
    with pytest.raises(DocumentError, match="DTD"):
        extract_isolated(fx.xxe_docx(), "a.docx", Limits(), timeout=30)
