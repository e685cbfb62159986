"""Configuration: `appliance.toml` in the data directory, overridden by `APPLIANCE_*` variables.

Every setting has a section and a key; the variable for `[server] port` is `APPLIANCE_SERVER_PORT`.
`APPLIANCE_DATA_DIR` stands for `--data-dir`. See docs/configuration.md for the full list.

Every table is a dataclass below and every table is read the same way: a key the dataclass does not
have, a table this module does not know, or a value that is not of the field's type is an error that
names it, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_FILE = "appliance.toml"


class ConfigError(Exception):
    pass


@dataclass
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""  # base of signed embed URLs; defaults to the listen address
    tls_cert: str = ""
    tls_key: str = ""
    tls_min_version: str = "1.2"


@dataclass
class LimitSettings:
    max_body_bytes: int = 10 * 1024 * 1024
    rate_per_second: float = 600.0  # per caller (API key, or client address when anonymous)
    rate_burst: int = 1200


@dataclass
class StorageSettings:
    synchronous: str = "FULL"  # FULL survives power loss; NORMAL survives a killed process
    busy_timeout_ms: int = 5000  # how long a write waits for another process's lock before failing
    purge_deleted_courses_days: float = 30.0  # soft-deleted courses are hard-deleted after this; 0: never
    disk_reserve_mb: float = 32.0  # space kept back (`.disk-reserve`) for the audit log when the disk fills; 0: none


@dataclass
class LogSettings:
    level: str = "INFO"
    access_log: bool = True


@dataclass
class WebhookSettings:
    allow_hosts: list[str] = field(default_factory=list)  # hostnames, *.domains, IPs, CIDRs; empty: none
    allow_http: bool = False  # https only unless the operator allows plain http receivers
    ca_file: str = ""  # extra PEM CA bundle (internal CA) trusted besides the system store
    timeout_seconds: float = 10.0
    max_attempts: int = 10
    backoff_base_seconds: float = 30.0  # retry n waits base * 2^(n-1) (+-20 % jitter), capped below
    backoff_max_seconds: float = 3600.0
    poll_seconds: float = 1.0
    concurrency: int = 4
    retention_days: float = 30.0  # delivered and failed deliveries are then forgotten


@dataclass
class BackupSettings:
    path: str = ""  # where snapshots and log segments go; empty: <data dir>/backups (use another disk)
    retention_days: float = 7.0  # point-in-time recovery window
    ship_interval_seconds: float = 1.0  # committed changes reach the log within about this long
    snapshot_interval_hours: float = 24.0  # plus one after every migration and on demand


UPGRADE_CHANNELS = ("standard", "controlled")
CPU_BUILDS = ("auto", "portable", "avx512")  # ai.cpu_build: which llama.cpp libraries (appliance.ai.cpu_build)
CONTROLLED_MIN_AGE_DAYS = 14  # the "controlled" channel installs only releases at least this old


@dataclass
class UpgradeSettings:
    """`appliance upgrade` (appliance.release); see docs/operations.md, Upgrades."""

    channel: str = "standard"  # "controlled": bundles younger than 14 days need --force (audited)
    dev_key: str = ""  # a public key file trusted besides the shipped release keys (development only)


@dataclass
class EmbedSettings:
    url_seconds: int = 3 * 3600  # lifetime of a signed embed URL (the cloud's 3 hours)
    session_seconds: int = 3 * 3600  # lifetime of an embed session JWT (the page refreshes before)
    refresh_seconds: int = 12 * 3600  # absolute lifetime of a session's refresh-token family


@dataclass
class DocumentSettings:
    """Uploaded documents (appliance.documents); see docs/documents.md."""

    max_bytes: int = 32 * 1024 * 1024  # the upload route's body limit (the global limit does not apply)
    max_pages: int = 1000
    max_chars: int = 5_000_000  # extracted text
    max_zip_entries: int = 2000  # DOCX/PPTX archives
    max_uncompressed_bytes: int = 256 * 1024 * 1024
    max_expansion_ratio: float = 100.0  # uncompressed / compressed, over the whole archive
    extract_timeout_seconds: float = 60.0  # per file; the reader process is killed after this
    extract_memory_mb: int = 1024  # address-space cap of the reader process; 0: none
    summary_min_pages: int = 100  # from this many pages (or more text than fits) summarise by sections
    max_summary_sections: int = 16  # model calls for the section summaries of one document
    support_threshold: float = 0.5  # share of a screen's terms found in the source to count as supported


@dataclass
class RemoteEngine:
    """One `[ai] remote_engines` entry: a URL, or a table with these keys (appliance.ai.remote)."""

    url: str
    model: str = "default"
    name: str = ""  # names the engine in logs and its API key's secret; empty: the url
    response_format: str = "json_schema"  # or "json_object" (llama-cpp-python server style)
    # never read from the file (it is plain text): the runtime attaches it from the keyring or the
    # environment (appliance.security.secrets)
    api_key: str | None = field(default=None, repr=False)

    @property
    def key_name(self) -> str:
        """What names this engine's API key: `remote-api-key:<key_name>`, `api_key_variable(key_name)`."""
        return self.name or self.url.rstrip("/")


def api_key_variable(engine: str) -> str:
    """The environment variable that holds the API key of the remote engine `engine` (its key_name)."""
    return "APPLIANCE_AI_REMOTE_API_KEY_" + re.sub(r"[^A-Za-z0-9]", "_", engine).upper()


@dataclass
class AISettings:
    """The AI engines (appliance.ai); see docs/ai.md. An unset number (None) means the model's or the
    machine's own default."""

    model: str = ""  # manifest name; empty: the manifest's default
    models_dir: str = ""  # empty: <repo>/models from source, <data dir>/models in the binary
    n_ctx: int | None = None  # context size; unset: the model's manifest n_ctx
    n_threads: int | None = None  # llama.cpp threads; unset: the CPU count, at most 8
    cpu_build: str = "auto"  # llama.cpp libraries: auto, portable or avx512 (appliance.ai.cpu_build)
    queue_size: int = 8  # requests that may wait for a free sequence before QueueFull
    parallel: int | None = None  # sequences decoded together in one batch; unset: the engine's default
    kv_cells: int | None = None  # shared KV cache in tokens; unset: n_ctx x 4
    quality_retries: int = 2  # fresh samples for a result that fails the quality gate
    timeout_seconds: float = 300.0  # per request, queue wait included
    local: bool = True  # run the in-process engine (alone, or as the fallback behind remote ones)
    process: bool = True  # the on-box engine runs in a model process of its own, one per appliance
    remote_engines: list[RemoteEngine] = field(default_factory=list)
    remote_failure_threshold: int = 3
    remote_cooldown_seconds: float = 30.0
    remote_health_interval_seconds: float = 15.0  # background probe of each remote engine; 0: none
    tts_python: str = "~/.cache/appliance/venv-tts/bin/python"  # narration's side venv (make tts-deps)
    tts_memory_mb: int = 2048  # address-space cap of the text-to-speech worker


@dataclass
class ImageSettings:
    """Images for screens and covers (appliance.images); see docs/images.md. With no engine the
    offline illustration library is used."""

    engines: list[RemoteEngine] = field(default_factory=list)  # OpenAI-compatible /v1/images/generations
    size: str = "1024x1024"  # asked of the engine
    timeout_seconds: float = 120.0  # per engine and image
    max_bytes: int = 8 * 1024 * 1024  # largest image an engine may answer (the builder's media limit)
    max_pixels: int = 16_777_216  # width x height of an engine's image (4096 x 4096)


@dataclass
class AdminSettings:
    """The operator's console under /admin/ (appliance.admin); see docs/operations.md."""

    idle_minutes: float = 15.0  # a console session unused this long is ended (server-side)
    session_hours: float = 12.0  # absolute lifetime of a console session
    max_failed_logins: int = 5  # consecutive wrong passphrases before the account is locked
    lockout_minutes: float = 15.0  # how long a locked account refuses every passphrase


@dataclass
class Settings:
    data_dir: Path
    server: ServerSettings = field(default_factory=ServerSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    log: LogSettings = field(default_factory=LogSettings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    backup: BackupSettings = field(default_factory=BackupSettings)
    upgrades: UpgradeSettings = field(default_factory=UpgradeSettings)
    embeds: EmbedSettings = field(default_factory=EmbedSettings)
    documents: DocumentSettings = field(default_factory=DocumentSettings)
    ai: AISettings = field(default_factory=AISettings)
    images: ImageSettings = field(default_factory=ImageSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)

    @property
    def base_url(self) -> str:
        if self.server.public_url:
            return self.server.public_url.rstrip("/")
        scheme = "https" if self.server.tls_cert else "http"
        return f"{scheme}://{self.server.host}:{self.server.port}"


SECTIONS = {
    "server": ServerSettings,
    "limits": LimitSettings,
    "storage": StorageSettings,
    "log": LogSettings,
    "webhooks": WebhookSettings,
    "backup": BackupSettings,
    "upgrades": UpgradeSettings,
    "embeds": EmbedSettings,
    "documents": DocumentSettings,
    "ai": AISettings,
    "images": ImageSettings,
    "admin": AdminSettings,
}
# variables that name a setting besides APPLIANCE_<SECTION>_<KEY> (and win over it)
ENV_ALIASES = {"ai.models_dir": "APPLIANCE_MODELS_DIR"}


def _coerce(value: Any, target: Any, name: str) -> Any:
    """`value` (from TOML, or the text of an environment variable) as the field type `target`."""
    if typing.get_origin(target) in (types.UnionType, typing.Union):  # `int | None`: "" leaves it unset
        if value == "":
            return None
        target = next(t for t in typing.get_args(target) if t is not type(None))
    if typing.get_origin(target) is list:
        item = typing.get_args(target)[0]
        if item is RemoteEngine:
            return _remote_engines(value, name)
        target = list
    try:
        if target is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in {"1", "true", "yes", "on"}:
                return True
            if isinstance(value, str) and value.strip().lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(value)
        if target is int:
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if target is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if target is list:  # a TOML array, or comma-separated text (environment variables)
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, list):
                raise ValueError(value)
            return [str(v).strip() for v in items if str(v).strip()]
        if isinstance(value, (dict, list)):
            raise ValueError(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {name}: {value!r} is not a valid {target.__name__}") from None


def _remote_engines(value: Any, name: str) -> list[RemoteEngine]:
    """A TOML array of URLs or tables, or comma-separated URLs (environment variable)."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ConfigError(f"setting {name}: {value!r} is not a list of URLs or tables")
    keys = {f.name for f in dataclasses.fields(RemoteEngine)} - {"api_key"}
    engines = []
    for index, item in enumerate(items):
        where = f"{name}[{index}]"
        if isinstance(item, str):
            if item.strip():
                engines.append(RemoteEngine(url=item.strip()))
            continue
        if not isinstance(item, dict):
            raise ConfigError(f"setting {where}: {item!r} is neither a URL nor a table")
        unknown = set(item) - keys
        if unknown:
            raise ConfigError(f"unknown setting(s) in {where}: {', '.join(sorted(unknown))}")
        if not isinstance(item.get("url"), str) or not item["url"].strip():
            raise ConfigError(f"setting {where}: needs a url")
        engine = RemoteEngine(**{k: _coerce(v, str, f"{where}.{k}") for k, v in item.items()})
        if engine.response_format not in {"json_schema", "json_object"}:
            raise ConfigError(f"setting {where}.response_format must be json_schema or json_object")
        engines.append(engine)
    return engines


def resolve_data_dir(arg: str | None) -> Path:
    value = arg or os.environ.get("APPLIANCE_DATA_DIR")
    if not value:
        raise ConfigError("give --data-dir DIR or set APPLIANCE_DATA_DIR")
    return Path(value).expanduser().resolve()


def _refuse_secrets(ai_table: dict[str, Any], path: Path) -> None:
    """The config file is plain text: a remote engine's api_key belongs in the keyring or the
    environment (appliance.security.secrets). The message never repeats the value."""
    engines = ai_table.get("remote_engines")
    for index, item in enumerate(engines if isinstance(engines, list) else []):
        if isinstance(item, dict) and "api_key" in item:
            engine = RemoteEngine(url=str(item.get("url", "")), name=str(item.get("name") or "")).key_name
            engine = engine or str(index)
            raise ConfigError(
                f"{path}: [ai] remote_engines[{index}] has an api_key; secrets do not belong in the configuration "
                f"file. Remove it and store it with `appliance secret set remote-api-key:{engine}` (value on "
                f"stdin; kept in the encrypted keyring) or set the environment variable {api_key_variable(engine)}"
            )


def load(data_dir: Path, environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    path = data_dir / CONFIG_FILE
    if path.exists():
        try:
            raw = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    unknown_tables = set(raw) - set(SECTIONS)
    if unknown_tables:
        raise ConfigError(f"{path}: unknown table(s): {', '.join(f'[{t}]' for t in sorted(unknown_tables))}")
    settings = Settings(data_dir=data_dir)
    for section, cls in SECTIONS.items():
        values = raw.get(section, {})
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: [{section}] must be a table")
        if section == "ai":
            _refuse_secrets(values, path)
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"{path}: unknown setting(s) in [{section}]: {', '.join(sorted(unknown))}")
        target = getattr(settings, section)
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            name = f"{section}.{f.name}"
            env_names = [ENV_ALIASES[name]] if name in ENV_ALIASES else []
            env_names.append(env_var(section, f.name))
            env_name = next((n for n in env_names if n in env), None)
            if env_name is not None:
                setattr(target, f.name, _coerce(env[env_name], hints[f.name], f"{name} ({env_name})"))
            elif f.name in values:
                setattr(target, f.name, _coerce(values[f.name], hints[f.name], name))
    if settings.storage.synchronous.upper() not in {"FULL", "NORMAL", "EXTRA"}:
        raise ConfigError("storage.synchronous must be FULL, NORMAL or EXTRA")
    if settings.storage.disk_reserve_mb < 0:
        raise ConfigError("storage.disk_reserve_mb must be 0 or more")
    if settings.server.tls_min_version not in {"1.2", "1.3"}:
        raise ConfigError("server.tls_min_version must be 1.2 or 1.3")
    _check_webhooks(settings.webhooks)
    docs = settings.documents
    if min(docs.max_bytes, docs.max_pages, docs.max_zip_entries, docs.max_summary_sections) < 1 or min(
        docs.extract_timeout_seconds, docs.max_expansion_ratio
    ) <= 0:
        raise ConfigError("documents limits and extract_timeout_seconds must be positive")
    if min(settings.backup.retention_days, settings.backup.ship_interval_seconds) <= 0:
        raise ConfigError("backup.retention_days and backup.ship_interval_seconds must be positive")
    if settings.upgrades.channel not in UPGRADE_CHANNELS:
        raise ConfigError(f"upgrades.channel must be one of {', '.join(UPGRADE_CHANNELS)}")
    ai = settings.ai
    if min(ai.queue_size, ai.remote_failure_threshold, ai.tts_memory_mb) < 1 or ai.timeout_seconds <= 0:
        raise ConfigError("ai.queue_size, remote_failure_threshold, tts_memory_mb and timeout_seconds must be positive")
    if ai.cpu_build not in CPU_BUILDS:
        raise ConfigError(f"ai.cpu_build must be one of {', '.join(CPU_BUILDS)}")
    if ai.quality_retries < 0:
        raise ConfigError("ai.quality_retries must be 0 or more")
    images = settings.images
    if min(images.timeout_seconds, images.max_bytes, images.max_pixels) <= 0 or not re.fullmatch(r"\d{2,5}x\d{2,5}", images.size):
        raise ConfigError("images.timeout_seconds, max_bytes and max_pixels must be positive; images.size is WIDTHxHEIGHT")
    admin = settings.admin
    if min(admin.idle_minutes, admin.session_hours, admin.lockout_minutes) <= 0 or admin.max_failed_logins < 1:
        raise ConfigError("admin.idle_minutes, session_hours, lockout_minutes and max_failed_logins must be positive")
    return settings


def env_var(section: str, key: str) -> str:
    """The environment variable that overrides `[section] key`."""
    return f"APPLIANCE_{section.upper()}_{key.upper()}"


def setting_names() -> list[str]:
    """Every setting as `section.key` (docs/configuration.md lists each one; tests/test_docs.py checks)."""
    return [f"{section}.{f.name}" for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)]


def _check_webhooks(hooks: WebhookSettings) -> None:
    from appliance.webhooks.allow import AllowList

    try:
        AllowList.parse(hooks.allow_hosts)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if hooks.ca_file:
        import ssl

        try:
            ssl.create_default_context().load_verify_locations(cafile=hooks.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"webhooks.ca_file: {hooks.ca_file} is not a readable PEM bundle ({exc})") from None
    if hooks.max_attempts < 1 or hooks.concurrency < 1:
        raise ConfigError("webhooks.max_attempts and webhooks.concurrency must be at least 1")
    if min(hooks.timeout_seconds, hooks.backoff_base_seconds, hooks.poll_seconds) <= 0:
        raise ConfigError("webhooks timeouts, backoff and poll interval must be positive")


DEFAULT_TOML = """\
# Appliance configuration. Every key can be overridden by APPLIANCE_<SECTION>_<KEY>.
[server]
host = "127.0.0.1"      # loopback by default; set 0.0.0.0 to serve the network
port = 8080
public_url = ""         # the base partners' browsers reach, e.g. https://learn.example.internal
tls_cert = ""           # PEM certificate; set by `init` to the self-signed one if you asked for it
tls_key = ""
tls_min_version = "1.2"

[limits]
max_body_bytes = 10485760
rate_per_second = 600
rate_burst = 1200

[storage]
synchronous = "FULL"    # FULL: a 2xx write survives power loss. NORMAL: survives a killed process.
busy_timeout_ms = 5000
purge_deleted_courses_days = 30  # soft-deleted courses are hard-deleted after this many days; 0: never
disk_reserve_mb = 32    # released when the disk fills, so reads stay audited (docs/operations.md, Disk full)

[log]
level = "INFO"
access_log = true

[webhooks]
allow_hosts = []        # receivers partners may register: ["hooks.example.internal", "10.20.0.0/16"]
allow_http = false      # true lets partners register plain http:// receivers
ca_file = ""            # PEM bundle of an internal CA, trusted besides the system store
timeout_seconds = 10
max_attempts = 10
backoff_base_seconds = 30   # retries after ~30 s, 1, 2, 4, 8, 16, 32 min, then hourly (+-20 % jitter)
backoff_max_seconds = 3600
poll_seconds = 1
concurrency = 4
retention_days = 30

[backup]
path = ""                   # snapshots + change log; empty: <data dir>/backups. Prefer a second disk.
retention_days = 7          # point-in-time recovery window
ship_interval_seconds = 1   # changes reach the encrypted log within about this long
snapshot_interval_hours = 24

[upgrades]
channel = "standard"        # "controlled": `appliance upgrade` refuses releases younger than 14 days

[documents]
max_bytes = 33554432        # uploads of documents (this route's own body limit, see docs/documents.md)
max_pages = 1000
max_uncompressed_bytes = 268435456  # DOCX/PPTX: zip bombs are refused before anything is inflated
max_expansion_ratio = 100
extract_timeout_seconds = 60
"""
