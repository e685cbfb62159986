"""The grammar's string rule: what a JSON string may hold, checked token by token on the real
llama.cpp grammar sampler (the small test model's vocabulary)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from appliance.ai.cpu_build import import_llama
from appliance.ai.grammar import LazyGrammarSampler, schema_to_gbnf
from tests.ai.conftest import model_path

SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"],
          "additionalProperties": False}


@pytest.fixture(scope="module")
def llm() -> Iterator[Any]:
    llama_cpp = import_llama()  # the libraries the engine loads (appliance.ai.cpu_build)

    model = llama_cpp.Llama(model_path=str(model_path()), n_ctx=256, n_threads=1, verbose=False)
    yield model
    model.close()


def _inside_string(llm: Any, allow_cjk: bool) -> LazyGrammarSampler:
    """A sampler whose grammar has just opened the string value of "text"."""
    sampler = LazyGrammarSampler(llm, schema_to_gbnf(SCHEMA, allow_cjk=allow_cjk), seed=1)
    for token in llm.tokenize(b'{"text": "', add_bos=False, special=False):
        assert sampler.force(token)
    return sampler


@pytest.mark.parametrize("text", ["数据", "データ", "데이터"])
def test_without_cjk_the_grammar_refuses_han_kana_and_hangul(llm: Any, text: str) -> None:
    first = llm.tokenize(text.encode(), add_bos=False, special=False)[0]
    allowing, refusing = _inside_string(llm, True), _inside_string(llm, False)
    try:
        assert allowing.legal(first)  # the default grammar lets the model write them
        assert not refusing.legal(first)
    finally:
        allowing.close()
        refusing.close()


@pytest.mark.parametrize("text", ["café", "it\u2019s", "a — b", "«über»", "Привет", "10 €"])
def test_without_cjk_latin_typography_and_other_scripts_stay_legal(llm: Any, text: str) -> None:
    sampler = _inside_string(llm, False)
    try:
        for token in llm.tokenize(text.encode(), add_bos=False, special=False):
            assert sampler.force(token), (text, token)
    finally:
        sampler.close()


def test_generation_keeps_cjk_out_unless_the_callers_text_has_it() -> None:
    from appliance.ai.engine import DEFAULT_SAMPLING
    from appliance.ai.generation import for_scripts

    assert for_scripts(DEFAULT_SAMPLING, "Manual handling", None).allow_cjk is False
    assert for_scripts(DEFAULT_SAMPLING, "Manual handling", "数据安全").allow_cjk is True


SENTENCES = {"type": "object", "properties": {"text": {"type": "string", "minLength": 3, "maxLength": 40,
                                                       "x-sentence-after": 12}},
             "required": ["text"], "additionalProperties": False}


def _written(llm: Any, sampler: LazyGrammarSampler, text: str) -> bool:
    """Whether the grammar accepts ``text`` token by token."""
    return all(sampler.force(token) for token in llm.tokenize(text.encode(), add_bos=False, special=False))


def test_past_x_sentence_after_a_sentence_end_closes_the_string(llm: Any) -> None:
    from appliance.ai.grammar import schema_to_gbnf

    def opened() -> LazyGrammarSampler:
        sampler = LazyGrammarSampler(llm, schema_to_gbnf(SENTENCES), seed=1)
        assert _written(llm, sampler, '{"text": "')
        return sampler

    quote = llm.tokenize(b'"', add_bos=False, special=False)[0]
    early = opened()  # within 12 characters: a sentence end, then another sentence
    assert _written(llm, early, "Lock it. Now")
    late = opened()  # past 12: the running sentence may go on, but the first sentence end closes it
    assert _written(llm, late, "Lock your screen when you leave")
    assert not late.legal(quote)  # and it may not stop mid-sentence
    assert _written(llm, late, ".")
    assert late.legal(quote)
    assert not late.legal(llm.tokenize(b" Then", add_bos=False, special=False)[0])
    long = opened()  # 39 characters without a sentence end: the 40th (maxLength) must be one
    assert _written(llm, long, "Lock your screen whenever you leave the")
    assert not long.legal(llm.tokenize(b" d", add_bos=False, special=False)[0])
    assert not long.legal(quote)
    assert _written(llm, long, "!")
    for sampler in (early, late, long):
        sampler.close()
