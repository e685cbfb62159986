"""Speculative decoding on 2 cores: does a draft help the default model here?

    .venv/bin/python bench/speculative.py --draft /path/qwen2.5-coder-0.5b-instruct.gguf [--rounds 3]
                                          [--tokens 200] [--out bench/results-speculative.json]

Greedy decoding of the default model (Qwen2.5-Coder-1.5B Q4_K_M, 2 threads) through llama-cpp-python's
own speculative path (`Llama(draft_model=...)`: the draft's tokens are evaluated in one batch and kept
while the model agrees, so the text is the same as without a draft), three ways in interleaved rounds:
no draft; prompt-lookup decoding (`LlamaPromptLookupDecoding`, drafts copied from the prompt); and
Qwen2.5-Coder-0.5B-Instruct as draft model (same tokenizer), 4 tokens a time. Two prompts: a screen
on a topic alone, and a screen grounded in a source paragraph (where prompt lookup has text to copy).
Medians of tokens per second; the date, CPU model, nproc and load averages are recorded. The draft
model is not shipped (docs/ai.md "Speculative decoding" says why): pass its file with --draft.
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

import numpy as np

from appliance.ai.bench import cpu_model
from appliance.ai.generation import prompt_messages
from appliance.ai.models import REPO_MODELS_DIR, get_spec

SOURCE = (
    "Phishing emails pretend to come from a bank, a supplier or a colleague. They ask you to click a link, "
    "open an attachment or confirm a password. Check the sender's address, hover over links before you click, "
    "and never enter your password on a page you reached from an email. Report a suspicious email with the "
    "Report button; do not forward it. If you clicked a link, tell the IT service desk at once."
)
PROMPTS = {
    "topic": prompt_messages('Screen "Spotting a phishing email" (text). Explain it in 1 or 2 short paragraphs '
                             "of 2-3 sentences each.", None, "Phishing awareness for new employees"),
    "grounded": prompt_messages('Screen "What to do with a suspicious email" (text). Explain it in 1 or 2 short '
                                "paragraphs of 2-3 sentences each, using the source.", SOURCE,
                                "Phishing awareness for new employees"),
}


class SmallModelDraft:
    """A draft model for llama-cpp-python's speculative path: the small model's greedy next tokens."""

    def __init__(self, path: str, tokens: int, threads: int) -> None:
        from llama_cpp import Llama

        self.llm = Llama(model_path=path, n_ctx=4096, n_threads=threads, verbose=False)
        self.tokens = tokens

    def __call__(self, input_ids: Any, /, **kwargs: Any) -> Any:
        out: list[int] = []
        for token in self.llm.generate(list(input_ids), temp=0.0, top_k=1):  # reuses the evaluated prefix
            out.append(token)
            if len(out) >= self.tokens:
                break
        return np.array(out, dtype=np.intc)


def one(llm: Any, messages: Any, tokens: int) -> dict[str, Any]:
    begin = time.perf_counter()
    result = llm.create_chat_completion(messages=messages, max_tokens=tokens, temperature=0.0, top_k=1,
                                        repeat_penalty=1.0)
    seconds = time.perf_counter() - begin
    generated = int(result["usage"]["completion_tokens"])
    return {"seconds": seconds, "tokens": generated, "tok_s": generated / seconds,
            "text": result["choices"][0]["message"]["content"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--draft", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="bench/results-speculative.json")
    args = ap.parse_args(argv)
    from llama_cpp import Llama
    from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

    main_path = str(get_spec("qwen2.5-coder-1.5b-instruct-q4_k_m", REPO_MODELS_DIR).path(REPO_MODELS_DIR))
    load_before = os.getloadavg()
    variants = {
        "none": lambda: Llama(model_path=main_path, n_ctx=4096, n_threads=args.threads, verbose=False),
        "prompt_lookup": lambda: Llama(model_path=main_path, n_ctx=4096, n_threads=args.threads, verbose=False,
                                       draft_model=LlamaPromptLookupDecoding(num_pred_tokens=2)),
        "draft_0.5b": lambda: Llama(model_path=main_path, n_ctx=4096, n_threads=args.threads, verbose=False,
                                    draft_model=SmallModelDraft(args.draft, 4, args.threads)),
    }
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {v: {p: [] for p in PROMPTS} for v in variants}
    for _round in range(args.rounds):
        for name, make in variants.items():  # interleaved: every variant once per round
            llm = make()
            for prompt, messages in PROMPTS.items():
                run = one(llm, messages, args.tokens)
                runs[name][prompt].append(run)
                print(f"{name:14} {prompt:9} {run['tok_s']:.2f} tok/s ({run['tokens']} tokens)", flush=True)
            llm.close()
    summary: dict[str, Any] = {}
    for name in variants:
        for prompt in PROMPTS:
            rate = statistics.median(r["tok_s"] for r in runs[name][prompt])
            base = statistics.median(r["tok_s"] for r in runs["none"][prompt])
            same = all(r["text"] == runs["none"][prompt][0]["text"] for r in runs[name][prompt])
            summary[f"{name}/{prompt}"] = {"median_tok_s": round(rate, 2), "ratio_to_none": round(rate / base, 3),
                                           "same_text_as_none": same}
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "cpu": cpu_model(), "nproc": os.cpu_count(),
        "loadavg_before": load_before, "loadavg_after": os.getloadavg(), "threads": args.threads,
        "tokens": args.tokens, "rounds": args.rounds, "summary": summary,
        "runs": {n: {p: [{k: v for k, v in r.items() if k != "text"} for r in rs] for p, rs in ps.items()}
                 for n, ps in runs.items()},
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
