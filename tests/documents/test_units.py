"""The pieces without a server: detection, extraction limits, chunking, section plans, slide groups,
the data fence, support scores, and the reader's deadline."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import pytest

from appliance.documents import course, digest, sandbox
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


# -- the reader started ahead of time ------------------------------------------------------------
def _spare_pid() -> int | None:
    proc = sandbox.SPARE._proc
    return proc.pid if proc is not None and proc.poll() is None else None


def test_each_document_gets_its_own_reader_started_ahead() -> None:
    sandbox.SPARE.discard()
    sandbox.prestart()  # what the server's start-up may call
    assert _spare_pid() is not None
    extract_isolated(fx.make_docx(), "a.docx", Limits(), timeout=30)
    waiting = _spare_pid()
    assert waiting is not None  # the next reader is started once a document is read
    proc = sandbox.SPARE._proc
    assert proc is not None
    assert extract_isolated(fx.long_pdf(3), "a.pdf", Limits(), timeout=30).pages == 3
    assert proc.wait(timeout=10) == 0  # that reader read one document and left
    assert _spare_pid() not in (None, waiting)  # a fresh one waits for the next


def test_a_reader_started_ahead_keeps_its_memory_cap_and_deadline() -> None:
    extract_isolated(fx.make_docx(), "a.docx", Limits(), timeout=30)
    assert _spare_pid() is not None
    with pytest.raises(DocumentError) as info:  # 1 MiB: it cannot even hold the file
        extract_isolated(fx.long_pdf(120), "a.pdf", Limits(), timeout=30, memory_mb=1)
    assert info.value.status == 422
    assert _spare_pid() is not None
    with pytest.raises(DocumentError, match="longer than"):
        extract_isolated(fx.long_pdf(120), "a.pdf", Limits(), timeout=0.001)
    assert extract_isolated(fx.long_pdf(120), "a.pdf", Limits(), timeout=30).pages == 120


def test_memoised_font_encodings_read_the_same_text(monkeypatch: pytest.MonkeyPatch) -> None:
    import pypdf._codecs as codecs
    import pypdf._text_extraction._text_extractor as extractor
    import pypdf.generic._font as font

    for module in (codecs, font, extractor):  # restored after the test: the patch is the reader's
        monkeypatch.setattr(module, "encoding_dict_from_named_encoding", codecs.encoding_dict_from_named_encoding)
    data = fx.long_pdf(30)
    stock = extract(data, "a.pdf", Limits())
    assert sandbox.memoise_pypdf_encodings()  # in place for the pinned pypdf
    assert font.encoding_dict_from_named_encoding is codecs.encoding_dict_from_named_encoding
    assert extract(data, "a.pdf", Limits()) == stock
    table = font.encoding_dict_from_named_encoding("cp1252")
    table[65] = "changed"  # a caller applying /Differences changes its own copy only
    assert font.encoding_dict_from_named_encoding("cp1252")[65] == "A"
    assert extract_isolated(data, "a.pdf", Limits(), timeout=30) == stock


# -- digests and focused sources -----------------------------------------------------------------
def test_section_digests_fit_keep_order_and_skip_repeats() -> None:
    boiler = "Acme Corp confidential handbook for site safety staff."
    first = " ".join([boiler, "Ladders need three points of contact on every climb.",
                      "Inspect ladder rungs and footing before every climb.",
                      "Ladders need three points of contact on every climb today.",
                      "Report broken ladder rungs to the supervisor at once.", boiler])
    second = " ".join([boiler, "Forklift drivers keep pedestrians out of loading zones.",
                       "Forklift loads stay below the rated capacity of the mast."])
    out = digest.digest_sections([("", first), ("Forklifts", second)], 170)
    assert [d.title for d in out][1] == "Forklifts" and "ladder" in out[0].title.lower()
    for d, text in zip(out, (first, second), strict=True):
        assert 0 < len(d.text) <= 170
        picked = digest.sentences(d.text)
        assert [text.index(p) for p in picked] == sorted(text.index(p) for p in picked)  # document order
    assert sum(d.text.count(boiler) for d in out) <= 1  # a running header counts once
    # the near-repeat of a picked sentence loses to a sentence that says something new
    assert "Report broken ladder rungs" in out[0].text or "Inspect ladder rungs" in out[0].text
    assert not ("three points of contact on every climb." in out[0].text
                and "every climb today" in out[0].text)


def test_focused_source_serves_the_screen() -> None:
    texts = [f"General rule {i}: keep the workplace tidy and walkways clear of clutter." for i in range(30)]
    texts.insert(17, "Fire extinguishers are checked monthly and the evacuation alarm is tested weekly.")
    assert digest.focused(texts, "Fire evacuation alarm", 100) == texts[17]  # room for one: the one asked for
    out = digest.focused(texts, "Fire evacuation alarm", 300)
    assert len(out) <= 300 and texts[17] in out and out.endswith(texts[17])  # the rest in document order


def test_first_screen_alone_then_the_others_together() -> None:
    lock = threading.Lock()
    running: list[int] = []
    seen: list[tuple[int, list[int]]] = []  # (screen, screens running when it started)

    def write(index: int) -> dict[str, Any]:
        with lock:
            running.append(index)
            seen.append((index, list(running)))
        time.sleep(0.05)
        with lock:
            running.remove(index)
        if index == 9:
            raise ValueError("screen 9 failed")
        return {"id": index + 1}

    out = list(course._write_screens(write, 7, None))
    assert out[0] == (0, {"id": 1}) and sorted(i for i, _ in out) == list(range(7))
    assert seen[0] == (0, [0])  # the first screen is written alone
    assert max(len(r) for _i, r in seen) == course.SCREEN_WORKERS  # the rest together, never more
    seen.clear()
    with pytest.raises(ValueError, match="screen 9"):  # the real error, not a skipped screen's
        list(course._write_screens(write, 25, None))
    assert len(seen) < 25  # screens not started when one failed are skipped
