"""JSON-schema constrained sampling at close to free-decoding speed (llama-cpp-python 0.3.36).

llama-cpp-python's stock sampler applies the grammar to the whole vocabulary on every token (about
20 ms per token for a 150k vocabulary). :class:`LazyGrammarSampler` does what llama.cpp's own server
does: sample from the unconstrained chain, probe only the sampled token against the grammar, and
run the full-vocabulary grammar pass only when that token is rejected (0.4-2.4% of tokens;
docs/ai.md "Constrained decoding").

Hard rule: a token is accepted into the grammar only after the grammar said it is legal. Accepting
an illegal token aborts the process (GGML_ABORT / std::terminate), which Python cannot catch.

This module uses private parts of llama-cpp-python (``llm._ctx.ctx``, ``llm._model.vocab``), so
the version is pinned to 0.3.36 and tests/ai exercise the path.
"""

from __future__ import annotations

import ctypes
import json
import math
import random
import re
import threading
from collections import OrderedDict
from typing import Any

from .cpu_build import import_llama
from .errors import InvalidOutput, SchemaError
from .quality import SENTENCE_END_MARKS

# Strict JSON string characters (upstream llama.cpp): no raw control characters inside strings.
# llama-cpp-python 0.3.36 emits ``char ::= [^"\\] | ...`` which lets raw newlines through and makes
# strict json.loads fail. Tested in tests/ai/test_local.py.
STRICT_CHAR_RULE = (
    r'char ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])'
)
# The same without Han, kana, hangul and CJK compatibility ideographs (SamplingParams.allow_cjk).
NO_CJK_CHAR_RULE = STRICT_CHAR_RULE.replace(
    r"\x00-\x1F]", r"\x00-\x1F\u3040-\u30FF\u3400-\u4DBF\u4E00-\u9FFF\uAC00-\uD7AF\uF900-\uFAFF]", 1
)
# Allow a newline plus bounded indentation between tokens, so that models can pretty-print
# (their habit), while keeping whitespace runs bounded.
WS_SPACE_RULE = r'space ::= | " " | "\n" [ \t]{0,20}'
# JSON-schema extension for sentence fields (docs/ai.md "Constrained decoding"): a string with
# ``"x-sentence-after": N`` may end anywhere up to N characters; past N it may not start another
# sentence: it runs on without a sentence end (at most its maxLength) and closes right after the
# first one. A hard maxLength alone cut about one field in three mid-sentence or mid-word.
SENTENCE_AFTER = "x-sentence-after"
SENTENCE_ENDS = SENTENCE_END_MARKS  # the quality gate's sentence ends (appliance.ai.quality)
SENTENCE_END_CLASS = "[" + SENTENCE_ENDS + "]"  # the GBNF rule `sentence-end`


def without_extensions(schema: Any) -> Any:
    """``schema`` without our grammar extension (``x-sentence-after``): what other engines get, so a
    strict structured-output server never meets a keyword it does not know."""
    if isinstance(schema, list):
        return [without_extensions(x) for x in schema]
    if not isinstance(schema, dict):
        return schema
    return {k: without_extensions(v) for k, v in schema.items() if k != SENTENCE_AFTER}


def _sentence_char_rule(char_rule: str) -> str:
    """``char`` without the sentence ends: what a sentence field holds past its x-sentence-after."""
    return char_rule.replace("char ::= [^", "sentence-char ::= [^" + SENTENCE_ENDS, 1)

_GBNF_CACHE: OrderedDict[str, str] = OrderedDict()
_GBNF_LOCK = threading.Lock()


def _llama_cpp() -> Any:
    return import_llama("llama_cpp.llama_cpp")


MAX_ENUM_RANGE = 256


def grammar_schema(schema: Any) -> Any:
    """Rewrite constraints the 0.3.36 converter ignores into ones it honours.

    Integer ``minimum``/``maximum`` (incl. exclusive) ranges of at most MAX_ENUM_RANGE values become
    an ``enum``. Whatever is still not expressible is caught by validation after generation.
    """
    if isinstance(schema, list):
        return [grammar_schema(x) for x in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: grammar_schema(v) for k, v in schema.items()}
    if out.get("type") == "integer" and "enum" not in out and "const" not in out:
        lo = out.get("minimum")
        hi = out.get("maximum")
        if isinstance(out.get("exclusiveMinimum"), int | float):
            lo = math.floor(out["exclusiveMinimum"]) + 1
        if isinstance(out.get("exclusiveMaximum"), int | float):
            hi = math.ceil(out["exclusiveMaximum"]) - 1
        if isinstance(lo, int | float) and isinstance(hi, int | float):
            lo_i, hi_i = math.ceil(lo), math.floor(hi)
            if 0 <= hi_i - lo_i < MAX_ENUM_RANGE:
                out["enum"] = list(range(lo_i, hi_i + 1))
    return out


def _convert(schema: dict[str, Any]) -> str:
    """llama-cpp-python's JSON-schema converter (what ``json_schema_to_gbnf`` does), plus
    ``x-sentence-after`` strings: ``"\"" (char{min,N-1} | char{N} sentence-char{0,M} sentence-end) "\""``
    with M = maxLength - N - 1. The alternatives are decided by the length alone, so the grammar
    keeps two parse stacks, not one per possible sentence start."""
    g = import_llama("llama_cpp.llama_grammar")

    class Converter(g.SchemaConverter):  # type: ignore[misc,name-defined]
        def visit(self, schema: dict[str, Any], name: str) -> str:
            after = schema.get(SENTENCE_AFTER) if isinstance(schema, dict) else None
            if schema.get("type") != "string" or after is None:
                return str(super().visit(schema, name))
            low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
            if not isinstance(after, int) or not isinstance(high, int) or not low < after < high:
                raise ValueError(f"{SENTENCE_AFTER} needs minLength < {SENTENCE_AFTER} < maxLength")
            char = self._add_primitive("char", g.PRIMITIVE_RULES["char"])
            self._add_rule("sentence-char", "char")  # replaced with the strict rule below
            self._add_rule("sentence-end", SENTENCE_END_CLASS)
            short = g._build_repetition(char, low, after - 1)
            long = g._build_repetition(char, after, after) + " " + g._build_repetition("sentence-char", 0, high - after - 1)
            rule_name = name + "-" if name in g.RESERVED_NAMES else name or "root"
            return str(self._add_rule(rule_name, f'"\\"" ( {short} | {long} sentence-end ) "\\"" space'))

    converter = Converter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    converter.visit(converter.resolve_refs(schema, "stdin"), "")
    return str(converter.format_grammar())


def schema_to_gbnf(schema: dict[str, Any], *, pretty_whitespace: bool = True, allow_cjk: bool = True) -> str:
    """GBNF for ``schema`` with the strict ``char`` rule (and optional pretty-print whitespace);
    ``allow_cjk=False`` keeps CJK scripts out of strings.

    Cached per schema and options. Raises :class:`SchemaError` if the converter does not support the schema.
    """
    key = json.dumps(schema, sort_keys=True) + ("|ws" if pretty_whitespace else "") + ("" if allow_cjk else "|nocjk")
    with _GBNF_LOCK:
        hit = _GBNF_CACHE.get(key)
        if hit is not None:
            _GBNF_CACHE.move_to_end(key)
            return hit
    try:
        gbnf = _convert(grammar_schema(schema))
    except Exception as exc:
        raise SchemaError(f"cannot convert JSON schema to a grammar: {exc}") from exc
    lines = gbnf.splitlines()
    out = []
    char_rule = STRICT_CHAR_RULE if allow_cjk else NO_CJK_CHAR_RULE
    for line in lines:
        if re.match(r"^char\s*::=", line):
            line = char_rule
        elif re.match(r"^sentence-char\s*::=", line):
            line = _sentence_char_rule(char_rule)
        elif pretty_whitespace and re.match(r"^space\s*::=", line):
            line = WS_SPACE_RULE
        out.append(line)
    gbnf = "\n".join(out) + "\n"
    with _GBNF_LOCK:
        _GBNF_CACHE[key] = gbnf
        while len(_GBNF_CACHE) > 64:
            _GBNF_CACHE.popitem(last=False)
    return gbnf


class LazyGrammarSampler:
    """Sampler chain (penalties, top-k, top-p, min-p, temperature, dist) with a lazy grammar check.

    One instance per request, used only on the thread that owns the ``Llama`` object. With
    ``gbnf=None`` it is a plain free-decoding sampler with the same chain (for fair benchmarks).
    """

    def __init__(
        self,
        llm: Any,
        gbnf: str | None,
        *,
        temperature: float = 0.3,
        top_k: int = 40,
        top_p: float = 0.9,
        min_p: float = 0.05,
        repeat_penalty: float = 1.1,
        penalty_last_n: int = 64,
        seed: int | None = None,
    ) -> None:
        import numpy as np  # llama-cpp-python dependency

        L = _llama_cpp()
        self._L = L
        self._np = np
        self.ctx = llm._ctx.ctx
        self.vocab = llm._model.vocab
        self.n = int(llm.n_vocab())
        self.grammar: Any = None
        self.chain: Any = None
        self.rejections = 0
        self.samples = 0
        if gbnf is not None:
            self.grammar = L.llama_sampler_init_grammar(self.vocab, gbnf.encode("utf-8"), b"root")
            if not self.grammar:
                raise SchemaError("llama.cpp rejected the generated grammar (GBNF parse failed)")
        self.chain = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())

        def add(s: Any) -> None:
            L.llama_sampler_chain_add(self.chain, s)  # the chain owns (and frees) its members

        if repeat_penalty != 1.0:
            # this fork's signature still takes n_vocab first
            add(L.llama_sampler_init_penalties(self.n, penalty_last_n, repeat_penalty, 0.0, 0.0))
        if temperature <= 0:
            add(L.llama_sampler_init_greedy())
        else:
            add(L.llama_sampler_init_top_k(top_k))
            add(L.llama_sampler_init_top_p(top_p, 1))
            add(L.llama_sampler_init_min_p(min_p, 1))
            add(L.llama_sampler_init_temp(temperature))
            add(L.llama_sampler_init_dist(seed if seed is not None else random.getrandbits(32)))

        td = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)], align=True)
        if td.itemsize != ctypes.sizeof(L.llama_token_data):
            raise RuntimeError("llama_token_data layout changed; pin llama-cpp-python==0.3.36")
        self.buf = np.zeros(self.n, td)
        self.ids = np.arange(self.n, dtype=np.int32)
        self.cur = L.llama_token_data_array(self.buf.ctypes.data_as(L.llama_token_data_p), self.n, -1, False)
        self.one = L.llama_token_data(0, 0.0, 0.0)
        self.one_arr = L.llama_token_data_array(ctypes.pointer(self.one), 1, -1, False)

    # -- internals ---------------------------------------------------------------------------

    def _fill(self, idx: int) -> None:
        """Rebuild the candidate array from the logits (samplers sort it in place)."""
        np, L = self._np, self._L
        self.buf["id"] = self.ids
        self.buf["logit"] = np.ctypeslib.as_array(L.llama_get_logits_ith(self.ctx, idx), shape=(self.n,))
        self.buf["p"] = 0.0
        c = self.cur
        c.data = self.buf.ctypes.data_as(L.llama_token_data_p)
        c.size = self.n
        c.selected = -1
        c.sorted = False

    def _pick(self) -> int:
        # apply, NOT llama_sampler_sample (which would also accept the token into the chain)
        self._L.llama_sampler_apply(self.chain, ctypes.byref(self.cur))
        sel = int(self.cur.selected)
        if sel < 0 or sel >= int(self.cur.size):
            raise InvalidOutput("the sampler selected no token")
        return int(self.cur.data[sel].id)

    def legal(self, token: int) -> bool:
        """1-candidate grammar probe; does not change the grammar state."""
        if self.grammar is None:
            return True
        self.one.id, self.one.logit, self.one.p = token, 1.0, 0.0
        self.one_arr.size, self.one_arr.selected, self.one_arr.sorted = 1, -1, False
        self._L.llama_sampler_apply(self.grammar, ctypes.byref(self.one_arr))
        return bool(self.one.logit != -math.inf)

    # -- public --------------------------------------------------------------------------------

    def sample(self, idx: int = -1) -> int:
        """Sample the next token from the logits at ``idx`` and accept it (grammar + chain)."""
        self.samples += 1
        self._fill(idx)
        tok = self._pick()
        if not self.legal(tok):
            self.rejections += 1
            self._fill(idx)
            self._L.llama_sampler_apply(self.grammar, ctypes.byref(self.cur))
            tok = self._pick()
            if not self.legal(tok):  # the grammar is dead here; never accept the token, resample instead
                raise InvalidOutput("the grammar allows no token here")
        if self.grammar is not None:
            self._L.llama_sampler_accept(self.grammar, tok)
        self._L.llama_sampler_accept(self.chain, tok)  # penalty history sees only the final token
        return tok

    def force(self, token: int) -> bool:
        """Accept ``token`` without sampling (jump-forward) if the grammar allows it here."""
        if not self.legal(token):
            return False
        if self.grammar is not None:
            self._L.llama_sampler_accept(self.grammar, token)
        self._L.llama_sampler_accept(self.chain, token)
        return True

    def close(self) -> None:
        """Free the native samplers. Idempotent."""
        L = getattr(self, "_L", None)
        if L is None:
            return
        for name in ("grammar", "chain"):
            s = getattr(self, name, None)
            if s:
                L.llama_sampler_free(s)
            setattr(self, name, None)

    def __del__(self) -> None:
        self.close()
