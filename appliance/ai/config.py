"""Engine configuration: the ``[ai]`` TOML table and ``APPLIANCE_AI_*`` environment variables.

Keys (TOML ``[ai]`` / env var):

    model            APPLIANCE_AI_MODEL            manifest name (default: manifest "default")
    models_dir       APPLIANCE_MODELS_DIR          models directory (default <repo>/models; in the one-file
                                                   binary <data dir>/models, set by AIService)
    n_ctx            APPLIANCE_AI_N_CTX            context size (default: the model's manifest n_ctx)
    n_threads        APPLIANCE_AI_N_THREADS        llama.cpp threads (default: cpu count, max 8)
    queue_size       APPLIANCE_AI_QUEUE_SIZE       waiting requests before QueueFull (default 8)
    parallel         APPLIANCE_AI_PARALLEL         sequences decoded together in one batch (default 6)
    kv_cells         APPLIANCE_AI_KV_CELLS         shared KV cache size in tokens (default n_ctx x 4)
    quality_retries  APPLIANCE_AI_QUALITY_RETRIES  fresh samples for a result that fails the quality gate
                                                   (default 2; 0 returns the first answer with its flags)
    timeout_seconds  APPLIANCE_AI_TIMEOUT_SECONDS  per-request timeout incl. queue wait (default 300)
    local            APPLIANCE_AI_LOCAL            "true"/"false": run the in-process engine (default true)
    remote_engines   APPLIANCE_AI_REMOTE_ENGINES   list of URLs or tables {url, model, name, response_format};
                                                   env: comma-separated URLs. An engine's API key is never
                                                   in the file: `appliance secret set` (docs/security.md)
    remote_failure_threshold, remote_cooldown_seconds, remote_health_interval_seconds
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .engine import Engine


def _bool(v: Any) -> bool:
    return v if isinstance(v, bool) else str(v).strip().lower() in ("1", "true", "yes", "on")


@dataclass
class AIConfig:
    model: str | None = None
    models_dir: Path | None = None
    n_ctx: int | None = None
    n_threads: int | None = None
    queue_size: int = 8
    parallel: int | None = None
    kv_cells: int | None = None
    quality_retries: int = 2
    timeout_seconds: float = 300.0
    local: bool = True
    remote_engines: list[Any] = field(default_factory=list)
    remote_failure_threshold: int = 3
    remote_cooldown_seconds: float = 30.0
    remote_health_interval_seconds: float | None = 15.0

    @classmethod
    def from_mapping(
        cls, table: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
    ) -> AIConfig:
        """Build from the ``[ai]`` TOML table, then let ``APPLIANCE_AI_*`` env vars override."""
        t = dict(table or {})
        env = os.environ if env is None else env
        e: dict[str, Any] = {
            k[len("APPLIANCE_AI_") :].lower(): v for k, v in env.items() if k.startswith("APPLIANCE_AI_")
        }
        if "APPLIANCE_MODELS_DIR" in env:
            e["models_dir"] = env["APPLIANCE_MODELS_DIR"]
        if "remote_engines" in e:
            e["remote_engines"] = [u.strip() for u in str(e["remote_engines"]).split(",") if u.strip()]
        t.update(e)
        c = cls()
        if t.get("model"):
            c.model = str(t["model"])
        if t.get("models_dir"):
            c.models_dir = Path(str(t["models_dir"]))
        for key in ("n_ctx", "n_threads", "queue_size", "parallel", "kv_cells", "quality_retries",
                    "remote_failure_threshold"):
            if t.get(key) not in (None, ""):
                setattr(c, key, int(t[key]))
        for key in ("timeout_seconds", "remote_cooldown_seconds", "remote_health_interval_seconds"):
            if t.get(key) not in (None, ""):
                setattr(c, key, float(t[key]))
        if "local" in t:
            c.local = _bool(t["local"])
        if t.get("remote_engines"):
            c.remote_engines = list(t["remote_engines"])
        return c


def create_engine(config: AIConfig | Mapping[str, Any] | None = None) -> Engine:
    """The engine the server should use.

    - only local: :class:`~appliance.ai.local.LocalEngine` (loads in the background);
    - remote engines configured: :class:`~appliance.ai.remote.RemotePool` in the configured order,
      with the local engine as last-resort fallback unless ``local = false``.
    """
    c = config if isinstance(config, AIConfig) else AIConfig.from_mapping(config)
    local: Engine | None = None
    if c.local:
        from .local import DEFAULT_PARALLEL, LocalEngine

        local = LocalEngine(
            c.model,
            models_dir=c.models_dir,
            n_ctx=c.n_ctx,
            n_threads=c.n_threads,
            queue_size=c.queue_size,
            timeout=c.timeout_seconds,
            parallel=c.parallel or DEFAULT_PARALLEL,
            kv_cells=c.kv_cells,
        )
    if not c.remote_engines:
        if local is None:
            raise ValueError("AI config has neither a local engine nor remote engines")
        return local
    from .remote import RemotePool

    return RemotePool(
        c.remote_engines,
        failure_threshold=c.remote_failure_threshold,
        cooldown=c.remote_cooldown_seconds,
        timeout=c.timeout_seconds,
        health_interval=c.remote_health_interval_seconds,
        fallback=local,
    )
