"""What one llama_decode costs on this machine, by batch width: the ceiling of the on-box writer.

    .venv/bin/python bench/decode_widths.py [--rounds 5] [--out bench/results-decode-widths.json]

One process, the default model on 2 threads, one unified KV cache as the engine makes it
(`batching.make_context`, here with 32 sequences so that widths above the engine's `parallel` can
be priced too), the CPU build `ai.cpu_build = auto` picks. Interleaved over rounds, medians in ms:
- `steps`: a step over W sequences, one token each, each with its logits (what the engine decodes
  when W requests are generating), W = 1 ... 32, and the cost per token;
- `one_sequence`: W tokens of one sequence with the logits of every token (what verifying W draft
  tokens costs) and with the last token's logits only (a prompt chunk);
- `logits`: a step over 5 sequences with all 5 rows of logits against the first row only: the
  output layer's price per sampled token (a 151,936-token vocabulary);
- `kv_fill`: a step over 5 sequences while another sequence holds F cells of the same cache (an
  idle prompt cache), in blocks 0, 1500, 0, 1500: attention runs over every cell up to the highest
  one in use.
Records date, CPU, nproc, load and the CPU build. docs/ai.md "Measured" reads the results.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.ai import cpu_build
from appliance.ai.bench import cpu_model
from appliance.ai.models import resolve_model

WIDTHS = (1, 2, 4, 5, 6, 8, 12, 16, 24, 32)
FILLS = (0, 1500, 0, 1500)  # interleaved blocks; 1,500 cells is more than a course holds
PROMPT = 40
TEXT = ("Phishing awareness for new employees: how to recognise a suspicious email, what to check in the "
        "sender, links and attachments, and how to report it to the security team. ") * 200


class Bench:
    def __init__(self, model: str, threads: int) -> None:
        llama_cpp = cpu_build.import_llama("llama_cpp")
        self.L = cpu_build.import_llama("llama_cpp.llama_cpp")
        internals = cpu_build.import_llama("llama_cpp._internals")
        _spec, path = resolve_model(model)
        self.llm = llama_cpp.Llama(model_path=str(path), n_ctx=512, n_threads=threads, n_threads_batch=threads,
                                   n_batch=256, verbose=False)
        params = self.llm.context_params
        params.n_ctx, params.n_batch, params.n_ubatch, params.n_seq_max = 16384, 512, 512, 32
        params.kv_unified = True
        self.context = internals.LlamaContext(model=self.llm._model, params=params, verbose=False)
        self.memory = self.L.llama_get_memory(self.context.ctx)
        self.batch = self.L.llama_batch_init(512, 0, 1)
        self.tokens: list[int] = self.llm.tokenize(TEXT.encode())
        self.pos = [0] * 32

    def decode(self, items: list[tuple[int, list[int]]], logits: str = "last") -> float:
        """Seconds for one llama_decode of ``items`` (sequence, tokens); ``logits``: "last" token
        of each sequence, "all" tokens, or "first" sequence only."""
        b, j = self.batch, 0
        for n, (seq, tokens) in enumerate(items):
            for k, token in enumerate(tokens):
                b.token[j], b.pos[j], b.n_seq_id[j] = token, self.pos[seq], 1
                b.seq_id[j][0] = seq
                last = k == len(tokens) - 1
                b.logits[j] = logits == "all" or (logits == "last" and last) or (logits == "first" and n == 0 and last)
                self.pos[seq] += 1
                j += 1
        b.n_tokens = j
        begin = time.perf_counter()
        rc = self.L.llama_decode(self.context.ctx, b)
        elapsed = time.perf_counter() - begin
        if rc != 0:
            raise RuntimeError(f"llama_decode failed ({rc})")
        return elapsed

    def forget(self, seq: int, keep: int = 0) -> None:
        """Drop the cells of ``seq`` from position ``keep`` on."""
        self.L.llama_memory_seq_rm(self.memory, seq, keep, -1)
        self.pos[seq] = keep

    def prompts(self, sequences: range, length: int) -> None:
        for seq in sequences:
            start = 40 * seq
            self.decode([(seq, self.tokens[start:start + length])])

    def fill(self, seq: int, cells: int) -> None:
        done = 0
        while done < cells:
            n = min(512, cells - done)
            self.decode([(seq, self.tokens[done:done + n])])
            done += n


def measure(bench: Bench, rounds: int) -> dict[str, list[float]]:
    t = bench.tokens
    samples: dict[str, list[float]] = {}

    def add(key: str, seconds: float) -> None:
        samples.setdefault(key, []).append(seconds * 1000)

    # every sequence holds a 40-token prompt: 1,280 cells in all, about the most a 10-screen course
    # holds (a course measured 1,305 at most, by llama.cpp's LLAMA_KV_CACHE_DEBUG)
    bench.prompts(range(32), PROMPT)
    for r in range(rounds + 1):  # the first round warms up and is dropped
        keep = r > 0
        for w in WIDTHS:
            s = bench.decode([(i, [t[r + i]]) for i in range(w)])
            a = bench.decode([(0, t[r:r + w])], "all")
            p = bench.decode([(1, t[r:r + w])], "last")
            bench.forget(0, PROMPT)  # the contexts stay the same size from round to round
            bench.forget(1, PROMPT)
            if keep:
                add(f"steps/{w}", s)
                add(f"one_sequence_all_logits/{w}", a)
                add(f"one_sequence_last_logit/{w}", p)
        five = [(i, [t[r + i]]) for i in range(5)]
        a, f = bench.decode(five, "last"), bench.decode(five, "first")
        if keep:
            add("logits/5 rows", a)
            add("logits/1 row", f)
    for seq in range(5, 32):  # only sequences 0-4 and the idle cache in 31 hold cells from here on
        bench.forget(seq)
    for fill in FILLS:
        for seq in range(5):
            bench.forget(seq, PROMPT)
        bench.forget(31)
        bench.fill(31, fill)
        for r in range(rounds + 1):
            s = bench.decode([(i, [t[r + i]]) for i in range(5)])
            if r > 0:
                add(f"kv_fill/{fill}", s)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct-q4_k_m")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="bench/results-decode-widths.json")
    args = parser.parse_args()
    build = cpu_build.select("auto")
    load_before = os.getloadavg()
    samples = measure(Bench(args.model, args.threads), args.rounds)
    median = {key: round(statistics.median(values), 1) for key, values in samples.items()}
    per_token = {f"steps/{w}": round(median[f"steps/{w}"] / w, 1) for w in WIDTHS}
    result: dict[str, Any] = {
        "benchmark": "llama_decode cost by width", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu": cpu_model(), "nproc": os.cpu_count(), "cpu_build": build, "threads": args.threads,
        "model": args.model, "rounds": args.rounds, "median_ms": median, "step_ms_per_token": per_token,
        "tokens_per_second": {k: round(1000 / v, 1) for k, v in per_token.items()},
        "samples_ms": {k: [round(v, 1) for v in vs] for k, vs in samples.items()},
        "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"median_ms": median, "per_token_ms": per_token}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
