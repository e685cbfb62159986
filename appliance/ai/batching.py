"""Continuous batching in one llama.cpp context: several sequences decoded by one ``llama_decode``.

Contract (docs/ai.md "Local engine"; used only by the worker thread of :class:`appliance.ai.local.LocalEngine`):

- The context has ``parallel`` sequences sharing one unified KV cache of ``kv_cells`` cells.
  Every step builds one batch: one token (or a run of forced tokens) for each decoding sequence
  and a prompt chunk of at most ``PROMPT_CHUNK`` tokens for each sequence still reading its prompt,
  so a new request starts while others keep decoding, and a short request never waits for a long
  one to finish.
- Prompt prefixes are reused: every sequence remembers the tokens its KV cells hold, also after its
  request ended. A new prompt takes the sequence with the longest common prefix (or copies that
  prefix from a running one with ``llama_memory_seq_cp``, which shares cells instead of copying
  them) and evaluates only the rest. Screens of one course share the system prompt and the course
  context this way. Requests admitted together read a shared prompt start once: a sequence whose
  next prompt tokens another sequence is reading in the same step waits for it, then takes those
  cells by ``llama_memory_seq_cp`` (:meth:`BatchDecoder._catch_up`) instead of evaluating them again.
- Jump-forward: after each sampled token, the text the schema forces (:mod:`appliance.ai.forced`)
  is tokenized, each token is checked against the grammar, and the accepted ones are evaluated in
  the next batch without a sampling step. A finished root value ends the request at once.
- KV accounting is conservative: a running request reserves its prompt plus its ``max_tokens``
  (shared cells are counted once per sequence), idle caches are dropped oldest first when room is
  needed, and a request that does not fit waits in the queue. ``llama_decode`` therefore never
  runs out of cells; if it fails anyway, the requests in that batch fail and nothing else does.
- Each request has its own sampler (grammar, penalties, seed), cancel token and deadline, checked
  before every step; cancelling one request frees its sequence and leaves the others untouched.
"""

from __future__ import annotations

import codecs
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .cpu_build import import_llama
from .errors import AIError, Cancelled, GenerationTimeout
from .forced import ForcedText
from .grammar import LazyGrammarSampler, schema_to_gbnf

PROMPT_CHUNK = 128  # prompt tokens per sequence per step: bounds everyone's step time during prefill
FORCED_LIMIT = 48  # characters of forced text appended at once
SHARED_MIN = 16  # prompt tokens two readers must share before one waits for the other
# A request at ALONE_PRIORITY or more urgent (a course's opening screen) runs alone: the author
# sees it in seconds. Beside any other request, up to `urgent_company` others decode in the same
# step. Measured (bench/course.py --company, docs/ai.md "Benchmarks"): letting others decode beside
# the opening screen too put the first screen at 22 s instead of 5 s (their 128-token prompt chunks
# made each of its steps seconds long); keeping the plan (-1) alone as well made a 10-screen course
# 1.09x slower than letting the others decode beside it, with the first screen unchanged
ALONE_PRIORITY = -2
URGENT_COMPANY = 64


@dataclass
class Sequence:
    """One sequence of the shared context and the request it runs (None when idle)."""

    seq_id: int
    tokens: list[int] = field(default_factory=list)  # what its KV cells hold, by position
    job: Any = None
    pending: list[int] = field(default_factory=list)  # to evaluate in the next batch
    sampler: LazyGrammarSampler | None = None
    decoder: Any = None
    forced: ForcedText | None = None
    stats: Any = None
    max_tokens: int = 0
    generated: int = 0
    last_used: float = 0.0


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class BatchDecoder:
    """The sequences of one context; :meth:`admit` a request, call :meth:`step` until idle."""

    def __init__(self, llm: Any, context: Any, *, parallel: int, kv_cells: int, n_batch: int,
                 on_finish: Callable[[Any, BaseException | None], None]) -> None:
        self._L = import_llama("llama_cpp.llama_cpp")
        self.llm = llm
        self.ctx = context
        self.memory = self._L.llama_get_memory(context)
        self.kv_cells = kv_cells
        self.n_batch = n_batch
        self.sequences = [Sequence(i) for i in range(parallel)]
        self.batch = self._L.llama_batch_init(n_batch, 0, 1)
        self.vocab = llm._model.vocab
        self._on_finish = on_finish  # (job, None) when done, (job, error) when failed
        # steps by how many sequences they decoded: how full the batch was (bench/course.py)
        self.widths: Counter[int] = Counter()
        self.urgent_company = URGENT_COMPANY

    def close(self) -> None:
        if self.batch is not None:
            self._L.llama_batch_free(self.batch)
            self.batch = None
        for seq in self.sequences:
            if seq.sampler is not None:
                seq.sampler.close()

    # -- admission -------------------------------------------------------------------------------
    @property
    def active(self) -> list[Sequence]:
        return [s for s in self.sequences if s.job is not None]

    def owners(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for s in self.active:
            counts[s.job.owner] = counts.get(s.job.owner, 0) + 1
        return counts

    def _reserved(self, exclude: Sequence | None = None) -> int:
        total = 0
        for s in self.sequences:
            if s is exclude:
                continue
            total += len(s.tokens) + len(s.pending)
            if s.job is not None:
                total += max(0, s.max_tokens - s.generated)
        return total

    def fits(self, prompt_tokens: int, max_tokens: int) -> bool:
        """Whether a request fits now, counting idle caches as droppable."""
        busy = sum(len(s.tokens) + len(s.pending) + max(0, s.max_tokens - s.generated) for s in self.active)
        return busy + prompt_tokens + max_tokens <= self.kv_cells and any(s.job is None for s in self.sequences)

    def admit(self, job: Any, tokens: list[int], max_tokens: int, stats: Any) -> None:
        """Start ``job`` on a free sequence, reusing the longest cached prefix of ``tokens``."""
        free = [s for s in self.sequences if s.job is None]
        donor, shared = None, 0
        for s in self.sequences:
            n = _common_prefix(s.tokens, tokens)
            if n > shared:
                donor, shared = s, n
        shared = min(shared, len(tokens) - 1)  # the last prompt token is evaluated for its logits
        if donor is not None and donor.job is None:
            target = donor
        else:  # an empty sequence first, else the one idle longest
            target = min(free, key=lambda s: (len(s.tokens) > 0, s.last_used))
        need = len(tokens) + max_tokens
        for idle in sorted(free, key=lambda s: s.last_used):  # make room: drop idle caches, oldest first
            if self._reserved(exclude=target) + need <= self.kv_cells:
                break
            if idle is not target and idle is not donor and idle.tokens:
                self._L.llama_memory_seq_rm(self.memory, idle.seq_id, -1, -1)
                idle.tokens = []
        if (donor is not None and donor is not target and donor.job is None
                and self._reserved(exclude=target) + need > self.kv_cells):  # the idle donor must go too
            self._L.llama_memory_seq_rm(self.memory, donor.seq_id, -1, -1)
            donor.tokens, donor, shared = [], None, 0
        if target is donor:
            if not self._L.llama_memory_seq_rm(self.memory, target.seq_id, shared, -1):
                self._L.llama_memory_seq_rm(self.memory, target.seq_id, -1, -1)
                shared = 0
        else:
            self._L.llama_memory_seq_rm(self.memory, target.seq_id, -1, -1)
            if donor is not None and shared > 0:
                self._L.llama_memory_seq_cp(self.memory, donor.seq_id, target.seq_id, 0, shared)
            else:
                shared = 0
        target.tokens = tokens[:shared]
        target.pending = tokens[shared:]
        target.job = job
        target.stats = stats
        target.max_tokens = max_tokens
        target.generated = 0
        s = job.sampling
        gbnf = schema_to_gbnf(job.schema, allow_cjk=s.allow_cjk) if job.schema is not None else None
        target.sampler = LazyGrammarSampler(
            self.llm, gbnf, temperature=s.temperature, top_k=s.top_k, top_p=s.top_p, min_p=s.min_p,
            repeat_penalty=s.repeat_penalty, seed=s.seed,
        )
        target.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        target.forced = ForcedText(job.schema) if job.schema is not None else None
        stats.prompt_tokens = len(tokens)
        stats.cached_tokens = shared
        stats._t_prompt = time.monotonic()

    # -- ending ----------------------------------------------------------------------------------
    def _finish(self, seq: Sequence, error: BaseException | None, stop_reason: str = "") -> None:
        job, stats = seq.job, seq.stats
        if seq.decoder is not None and error is None:
            tail = seq.decoder.decode(b"", final=True)
            if tail:
                job.out.put(("chunk", tail))
        if seq.sampler is not None:
            stats.grammar_rejections = seq.sampler.rejections
            seq.sampler.close()
        if stats._t_first:
            stats.gen_seconds = time.monotonic() - stats._t_first
        stats.stop_reason = stop_reason or stats.stop_reason
        seq.job = seq.sampler = seq.decoder = seq.forced = None
        seq.pending = []
        seq.last_used = time.monotonic()
        self._on_finish(job, error)

    def fail_all(self, error: BaseException) -> None:
        for seq in self.active:
            self._finish(seq, error)

    def _expired(self, seq: Sequence) -> BaseException | None:
        if seq.job.cancel.cancelled:
            return Cancelled("AI request cancelled")
        if time.monotonic() >= seq.job.deadline:
            return GenerationTimeout("AI request timed out")
        return None

    # -- one step --------------------------------------------------------------------------------
    def step(self) -> None:
        """Evaluate one batch over every running sequence, then sample where logits are ready."""
        for seq in self.active:
            err = self._expired(seq)
            if err is not None:
                self._finish(seq, err)
        plan: list[tuple[Sequence, int, bool]] = []  # (sequence, tokens taken, wants logits)
        room = self.n_batch
        running = self.active
        if not running:
            return
        urgent = min(s.job.sampling.priority for s in running)
        company = self.urgent_company if urgent > ALONE_PRIORITY else 0
        reading: list[Sequence] = []  # sequences reading their prompt in this step
        # the most urgent first; decoding sequences before prompt readers (a token each, plus
        # forced runs, then prompt chunks); beside the most urgent, at most `urgent_company` others
        for seq in sorted(running, key=lambda s: (s.job.sampling.priority > urgent, s.stats._t_first == 0.0,
                                                  s.job.submitted)):
            if room <= 0 or not seq.pending:
                continue
            if seq.job.sampling.priority > urgent:
                if company <= 0:
                    continue
                company -= 1
            if seq.stats._t_first == 0.0:
                self._catch_up(seq)
                if any(self._shares_next(seq, leader) for leader in reading):
                    continue  # the leader reads the shared tokens; this one copies them next step
                reading.append(seq)
            chunk = PROMPT_CHUNK if seq.stats._t_first == 0.0 else len(seq.pending)
            take = min(len(seq.pending), chunk, room)
            plan.append((seq, take, take == len(seq.pending)))
            room -= take
        if not plan:
            return
        b = self.batch
        j = 0
        logits_at: dict[int, int] = {}
        for seq, take, wants in plan:
            base = len(seq.tokens)
            for k in range(take):
                b.token[j] = seq.pending[k]
                b.pos[j] = base + k
                b.n_seq_id[j] = 1
                b.seq_id[j][0] = seq.seq_id
                b.logits[j] = wants and k == take - 1
                j += 1
            if wants:
                logits_at[seq.seq_id] = j - 1
        b.n_tokens = j
        rc = self._L.llama_decode(self.ctx, b)
        self.widths[len(plan)] += 1
        if rc != 0:
            for seq, _take, _wants in plan:
                self._L.llama_memory_seq_rm(self.memory, seq.seq_id, -1, -1)
                seq.tokens = []
                self._finish(seq, AIError(f"llama_decode failed ({rc})"))
            return
        for seq, take, _wants in plan:
            seq.tokens.extend(seq.pending[:take])
            del seq.pending[:take]
        now = time.monotonic()
        for seq, _take, wants in plan:
            if not wants or seq.job is None:
                continue
            if seq.stats._t_first == 0.0:
                seq.stats.prompt_seconds = now - seq.stats._t_prompt
            try:
                self._sample(seq, logits_at[seq.seq_id])
            except AIError as exc:
                self._finish(seq, exc)

    def _catch_up(self, seq: Sequence) -> None:
        """Take the next prompt tokens of ``seq`` from a sequence that has already evaluated them
        (shared cells, no evaluation), keeping the last prompt token, which is read for its logits."""
        wanted = seq.tokens + seq.pending
        best, donor = len(seq.tokens), None
        for other in self.sequences:
            if other is not seq and len(other.tokens) > best:
                n = min(_common_prefix(other.tokens, wanted), len(wanted) - 1)
                if n > best:
                    best, donor = n, other
        if donor is None:
            return
        start = len(seq.tokens)
        self._L.llama_memory_seq_cp(self.memory, donor.seq_id, seq.seq_id, start, best)
        seq.tokens.extend(seq.pending[:best - start])
        del seq.pending[:best - start]
        seq.stats.cached_tokens += best - start

    @staticmethod
    def _shares_next(seq: Sequence, leader: Sequence) -> bool:
        """Whether ``leader``, reading its prompt from the same evaluated start, is about to read
        at least ``SHARED_MIN`` of the tokens ``seq`` would read next."""
        start = len(seq.tokens)
        if len(leader.tokens) != start or leader.tokens != seq.tokens:
            return False
        return _common_prefix(leader.pending, seq.pending) >= min(SHARED_MIN, len(seq.pending) - 1) > 0

    def _emit(self, seq: Sequence, token_bytes: bytes) -> str:
        text: str = seq.decoder.decode(token_bytes)
        if text:
            seq.job.out.put(("chunk", text))
        return text

    def _sample(self, seq: Sequence, index: int) -> None:
        assert seq.sampler is not None
        tok = seq.sampler.sample(index)
        stats = seq.stats
        if stats._t_first == 0.0:
            stats._t_first = time.monotonic()
        stats.completion_tokens += 1
        seq.generated += 1
        if self._L.llama_vocab_is_eog(self.vocab, tok):
            self._finish(seq, None, "eog")
            return
        text = self._emit(seq, self.llm.detokenize([tok]))
        if seq.forced is not None:
            seq.forced.feed(text)
        seq.pending = [tok]
        self._jump_forward(seq)
        if seq.forced is not None and seq.forced.done:
            self._finish(seq, None, "eog")  # the JSON value is complete: no need to sample the end
        elif seq.generated >= seq.max_tokens:
            self._finish(seq, None, "length")

    def _jump_forward(self, seq: Sequence) -> None:
        if seq.forced is None or seq.sampler is None:
            return
        text = seq.forced.forced(FORCED_LIMIT)
        if not text:
            return
        accepted: list[int] = []
        for tok in self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False):
            if seq.generated + len(accepted) >= seq.max_tokens or not seq.sampler.force(tok):
                break
            accepted.append(tok)
        if not accepted:
            return
        seq.generated += len(accepted)
        seq.stats.completion_tokens += len(accepted)
        seq.stats.forced_tokens += len(accepted)
        seq.forced.feed(self._emit(seq, self.llm.detokenize(accepted)))
        seq.pending.extend(accepted)


def make_context(llm: Any, *, parallel: int, kv_cells: int, n_batch: int) -> Any:
    """A context with ``parallel`` sequences over one unified KV cache (llama-cpp-python's own
    ``Llama`` builds a single-sequence one). Returns the internals wrapper; close() frees it."""
    internals = import_llama("llama_cpp._internals")
    params = llm.context_params
    params.n_ctx = kv_cells
    params.n_batch = n_batch
    params.n_ubatch = n_batch
    params.n_seq_max = parallel
    params.kv_unified = True  # one cell pool: a copied prefix is shared, not duplicated
    return internals.LlamaContext(model=llm._model, params=params, verbose=False)

