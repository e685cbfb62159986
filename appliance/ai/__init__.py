"""On-box and remote LLM engines for the appliance (docs/ai.md).

Public surface (see docs/ai.md)::

    from appliance.ai import create_engine, CancelToken
    engine = create_engine(config)            # LocalEngine, RemotePool, or RemotePool with local fallback
    value = engine.generate_json(messages, schema, max_tokens=800, timeout=120)   # parsed + validated
    for chunk in engine.stream(messages, schema=None, max_tokens=400): ...
    async for chunk in engine.astream(messages): ...;  await engine.agenerate_json(messages, schema)
    engine.status()  # EngineStatus.READY | LOADING | UNAVAILABLE | CLOSED
    engine.close()

Errors (all subclasses of AIError): QueueFull (503 + Retry-After), EngineUnavailable (503 +
Retry-After), ModelUnavailable (503), GenerationTimeout (504), Cancelled, InvalidOutput (502),
PromptTooLong (413), SchemaError (500).

Importing this package does not import llama_cpp; the local engine loads it lazily.
"""

from __future__ import annotations

from .config import AIConfig, create_engine
from .engine import CancelToken, Engine, EngineStatus, Message, Messages, SamplingParams
from .errors import (
    AIError,
    Cancelled,
    EngineUnavailable,
    GenerationTimeout,
    InvalidOutput,
    ModelUnavailable,
    PromptTooLong,
    QueueFull,
    SchemaError,
)

__all__ = [
    "AIConfig",
    "AIError",
    "CancelToken",
    "Cancelled",
    "Engine",
    "EngineStatus",
    "EngineUnavailable",
    "GenerationTimeout",
    "InvalidOutput",
    "Message",
    "Messages",
    "ModelUnavailable",
    "PromptTooLong",
    "QueueFull",
    "SamplingParams",
    "SchemaError",
    "create_engine",
]
