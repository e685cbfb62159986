"""Engine configuration: the ``[ai]`` table of ``appliance.config`` (``AISettings``, with its
``APPLIANCE_AI_*`` variables and ``APPLIANCE_MODELS_DIR``), read and checked there like every other
table. This module turns it into an engine.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from appliance.config import AISettings

from .engine import Engine

AIConfig = AISettings  # the name `appliance.ai` has always exported for the engine's settings


def local_options(c: AISettings) -> dict[str, Any]:
    """The on-box engine's options (LocalEngine's keyword arguments; plain data for the model process)."""
    from .local import DEFAULT_PARALLEL

    return {
        "model": c.model or None,
        "models_dir": str(Path(c.models_dir).expanduser()) if c.models_dir else None,
        "n_ctx": c.n_ctx,
        "n_threads": c.n_threads,
        "cpu_build": c.cpu_build,
        "queue_size": c.queue_size,
        "timeout": c.timeout_seconds,
        "parallel": c.parallel or DEFAULT_PARALLEL,
        "kv_cells": c.kv_cells,
    }


def create_engine(config: AISettings | None = None, run_dir: Path | None = None) -> Engine:
    """The engine the server should use.

    - only local: :class:`~appliance.ai.local.LocalEngine` (loads in the background); with a
      `run_dir` (the data directory's, given by the server) and ``process = true``,
      :class:`~appliance.ai.process_engine.ProcessEngine`: the same engine in the appliance's one
      model process (docs/ai.md, "Model process");
    - remote engines configured: :class:`~appliance.ai.remote.RemotePool` in the configured order,
      with the local engine as last-resort fallback unless ``local = false``.
    """
    c = config or AISettings()
    local: Engine | None = None
    if c.local:
        from .local import LocalEngine

        options = local_options(c)
        if c.process and run_dir is not None:
            from .process_engine import ProcessEngine

            local = ProcessEngine(run_dir, options, timeout=c.timeout_seconds)
        else:
            model_dir = options.pop("models_dir")
            local = LocalEngine(**options, models_dir=Path(model_dir) if model_dir else None)
    if not c.remote_engines:
        if local is None:
            raise ValueError("AI config has neither a local engine nor remote engines")
        return local
    from .remote import RemotePool

    return RemotePool(
        [dataclasses.asdict(e) for e in c.remote_engines],
        failure_threshold=c.remote_failure_threshold,
        cooldown=c.remote_cooldown_seconds,
        timeout=c.timeout_seconds,
        health_interval=c.remote_health_interval_seconds,
        fallback=local,
    )
