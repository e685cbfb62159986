"""Every table of every database, as numbered migrations.

Three kinds of database: `control` (workspaces, API keys, settings), `audit` (the hash-chained
audit log, outside point-in-time recovery) and `environment` (one per workspace and environment:
courses and everything partners create). A migration runs once, in its own transaction, and bumps
`PRAGMA user_version`; never edit a released migration, append a new one.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

from appliance.storage import capture
from appliance.storage.database import Database, StorageError

Migration = Callable[[sqlite_utils.Database], None]


def _meta(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE app_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)")


def _control_v1(db: sqlite_utils.Database) -> None:
    _meta(db)
    db.execute(
        """CREATE TABLE workspaces (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            created TEXT NOT NULL,
            entitlements TEXT NOT NULL,      -- JSON object: name -> bool
            allowed_origins TEXT NOT NULL    -- JSON object: env -> [origin, ...]
        )"""
    )
    db.execute(
        """CREATE TABLE api_keys (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key_id TEXT NOT NULL UNIQUE,     -- public handle for list/revoke and the audit log
            workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
            mode TEXT NOT NULL CHECK (mode IN ('test', 'production')),
            hash TEXT NOT NULL UNIQUE,       -- HMAC-SHA256 of the key under the keyring's pepper
            hint TEXT NOT NULL,              -- last four characters, for humans
            created TEXT NOT NULL,
            revoked TEXT
        )"""
    )
    db.execute("CREATE TABLE settings (k TEXT PRIMARY KEY, v TEXT NOT NULL)")


def _audit_v1(db: sqlite_utils.Database) -> None:
    _meta(db)
    db.execute(
        """CREATE TABLE audit (
            seq INTEGER PRIMARY KEY,
            time TEXT NOT NULL,
            actor TEXT NOT NULL,
            workspace_id INTEGER,
            environment TEXT,
            method TEXT NOT NULL,
            route TEXT NOT NULL,
            status INTEGER NOT NULL,
            target TEXT,
            request_id TEXT NOT NULL,
            client TEXT,
            user_agent TEXT,
            duration_ms REAL,
            prev TEXT NOT NULL,
            hash TEXT NOT NULL
        )"""
    )


def _environment_v1(db: sqlite_utils.Database) -> None:
    _meta(db)
    db.execute(
        """CREATE TABLE themes (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            preset TEXT,
            font TEXT,
            logo TEXT NOT NULL DEFAULT '[]',
            colours TEXT NOT NULL,           -- JSON {standard:{...}, cover:{...}}
            created TEXT NOT NULL,
            updated TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE courses (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL UNIQUE,
            title TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            identifier TEXT,
            client_identifier TEXT,
            image TEXT,
            thumbnail TEXT,
            active INTEGER NOT NULL DEFAULT 1,
            identified INTEGER NOT NULL DEFAULT 0,
            private INTEGER NOT NULL DEFAULT 0,
            type TEXT NOT NULL DEFAULT 'standard',
            legacy INTEGER NOT NULL DEFAULT 0,
            theme_id INTEGER REFERENCES themes(id) ON DELETE SET NULL,
            language TEXT NOT NULL DEFAULT 'en',
            translation_of INTEGER REFERENCES courses(id) ON DELETE CASCADE,  -- a language variant's source
            default_language INTEGER NOT NULL DEFAULT 1,
            revision INTEGER NOT NULL DEFAULT 0,
            draft TEXT NOT NULL,             -- JSON content: {start, finish, screens}
            published_content TEXT,          -- JSON content of the last published revision
            published TEXT,
            created TEXT NOT NULL,
            updated TEXT NOT NULL,
            deleted TEXT
        )"""
    )
    db.execute("CREATE INDEX courses_owner ON courses(client_identifier, identifier)")
    db.execute(
        """CREATE TABLE clients (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            client_identifier TEXT NOT NULL UNIQUE,
            metadata TEXT NOT NULL DEFAULT '{}',
            created TEXT NOT NULL,
            updated TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE users (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            identifier TEXT NOT NULL UNIQUE,
            client_identifier TEXT,
            name TEXT,
            avatar TEXT,
            email TEXT,
            metadata TEXT NOT NULL DEFAULT '{}',
            test_mode INTEGER NOT NULL DEFAULT 0,
            created TEXT NOT NULL,
            updated TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX users_client ON users(client_identifier)")
    db.execute(
        """CREATE TABLE trackings (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            course_id INTEGER NOT NULL REFERENCES courses(id) ON DELETE CASCADE,
            identifier TEXT NOT NULL,
            client_identifier TEXT,
            collection_tracking_id INTEGER,
            email TEXT,
            name TEXT,
            language TEXT,
            referrer TEXT,
            commenced TEXT,
            completed TEXT,
            progress_percent INTEGER NOT NULL DEFAULT 0,
            score REAL,
            passed INTEGER,
            total_time INTEGER NOT NULL DEFAULT 0,   -- seconds
            feedback TEXT,
            scorm INTEGER NOT NULL DEFAULT 0,
            attempts TEXT NOT NULL DEFAULT '[]',     -- JSON: screen attempts
            created TEXT NOT NULL,
            updated TEXT NOT NULL,
            UNIQUE (course_id, identifier)
        )"""
    )
    db.execute("CREATE INDEX trackings_identifier ON trackings(identifier)")
    db.execute(
        """CREATE TABLE collections (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL UNIQUE,
            title TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            identifier TEXT,
            client_identifier TEXT,
            theme_id INTEGER REFERENCES themes(id) ON DELETE SET NULL,
            course_ids TEXT NOT NULL DEFAULT '[]',   -- JSON: ordered course ids
            active INTEGER NOT NULL DEFAULT 1,
            created TEXT NOT NULL,
            updated TEXT NOT NULL,
            deleted TEXT
        )"""
    )
    db.execute(
        """CREATE TABLE collection_trackings (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
            identifier TEXT NOT NULL,
            client_identifier TEXT,
            name TEXT,
            commenced TEXT,
            completed TEXT,
            created TEXT NOT NULL,
            updated TEXT NOT NULL,
            UNIQUE (collection_id, identifier)
        )"""
    )
    db.execute(
        """CREATE TABLE allowances (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            client_identifier TEXT,                  -- NULL: the workspace environment as a whole
            metric TEXT NOT NULL,
            limit_value INTEGER,                     -- NULL: unlimited
            top_up INTEGER NOT NULL DEFAULT 0,
            created TEXT NOT NULL,
            updated TEXT NOT NULL,
            UNIQUE (client_identifier, metric)
        )"""
    )
    db.execute(
        """CREATE TABLE webhook_endpoints (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            url TEXT NOT NULL,
            events TEXT NOT NULL,                    -- JSON list of event names
            enabled INTEGER NOT NULL DEFAULT 1,
            secret TEXT NOT NULL,                    -- signing secret (the database is encrypted)
            created TEXT NOT NULL,
            updated TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE webhook_outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            delivery_id TEXT NOT NULL UNIQUE,        -- X-Coassemble-Delivery, for receivers' dedupe
            endpoint_id INTEGER NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
            event TEXT NOT NULL,
            body TEXT NOT NULL,                      -- the exact bytes that are signed and sent
            test INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL DEFAULT 'pending',  -- pending | delivered | failed
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt TEXT NOT NULL,
            last_error TEXT,
            created TEXT NOT NULL,
            delivered TEXT
        )"""
    )
    db.execute("CREATE INDEX webhook_outbox_due ON webhook_outbox(status, next_attempt)")
    db.execute("CREATE INDEX webhook_outbox_endpoint ON webhook_outbox(endpoint_id, id)")
    db.execute(
        """CREATE TABLE webhook_attempts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            outbox_id INTEGER NOT NULL REFERENCES webhook_outbox(id) ON DELETE CASCADE,
            time TEXT NOT NULL,
            status_code INTEGER,
            error TEXT,
            duration_ms REAL
        )"""
    )
    db.execute("CREATE INDEX webhook_attempts_outbox ON webhook_attempts(outbox_id)")
    db.execute(
        """CREATE TABLE request_failures (
            id INTEGER PRIMARY KEY,                  -- one row (id 1): the last failure, for setup/status
            time TEXT NOT NULL,
            method TEXT NOT NULL,
            route TEXT NOT NULL,
            status INTEGER NOT NULL,
            message TEXT NOT NULL,
            fix TEXT NOT NULL
        )"""
    )


def _environment_embed_sessions(db: sqlite_utils.Database) -> None:
    """Embed sessions (docs/embeds.md): one row per exchanged signed URL, and its rotating refresh tokens."""
    db.execute(
        """CREATE TABLE embed_sessions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            family TEXT NOT NULL UNIQUE,             -- the `sid` claim of the session JWTs
            url_jti TEXT NOT NULL,                   -- the signed URL it was exchanged from
            kind TEXT NOT NULL,
            action TEXT NOT NULL,
            course_id INTEGER,
            collection_id INTEGER,
            identifier TEXT,
            client_identifier TEXT,
            display TEXT NOT NULL DEFAULT '{}',      -- JSON: name, options, themeId of the signed URL
            created TEXT NOT NULL,
            expires TEXT NOT NULL,                   -- absolute end of the refresh family
            last_seen REAL NOT NULL,                 -- unix time of the last tracked call (time spent)
            revoked TEXT,
            revoked_reason TEXT
        )"""
    )
    db.execute(
        """CREATE TABLE embed_refresh_tokens (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            session_id INTEGER NOT NULL REFERENCES embed_sessions(id) ON DELETE CASCADE,
            token_hash TEXT NOT NULL UNIQUE,         -- SHA-256 of the token; the token is never stored
            created TEXT NOT NULL,
            expires REAL NOT NULL,
            used TEXT
        )"""
    )
    db.execute("CREATE INDEX embed_refresh_session ON embed_refresh_tokens(session_id)")


def _environment_jobs(db: sqlite_utils.Database) -> None:
    """Long AI work (generation, translation) as jobs whose record survives a restart."""
    db.execute(
        """CREATE TABLE jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,                      -- generate_course | generate_screen | generate_quiz | translate
            status TEXT NOT NULL,                    -- queued | running | succeeded | failed | cancelled
            progress REAL NOT NULL DEFAULT 0,        -- 0..1
            message TEXT NOT NULL DEFAULT '',
            input TEXT NOT NULL,                     -- JSON request
            result TEXT,                             -- JSON: what the job made (e.g. {"courseId": 7})
            error TEXT,
            actor TEXT NOT NULL,
            created TEXT NOT NULL,
            updated TEXT NOT NULL,
            finished TEXT
        )"""
    )
    db.execute("CREATE INDEX jobs_status ON jobs(status)")


def _environment_documents(db: sqlite_utils.Database) -> None:
    """Uploaded documents (appliance.documents): the record, its text chunks with an external-content
    FTS5 index kept in step by triggers (rebuilt after a restore), and cached section summaries.
    The original file is in the object store under the document's own subject key."""
    db.execute(
        """CREATE TABLE documents (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL UNIQUE,                -- random; the object-store subject id
            filename TEXT NOT NULL,
            type TEXT NOT NULL,                      -- pdf | docx | pptx | text | markdown
            title TEXT NOT NULL DEFAULT '',
            pages INTEGER NOT NULL,
            chars INTEGER NOT NULL,
            bytes INTEGER NOT NULL,
            object_id TEXT NOT NULL,                 -- the encrypted original
            owner TEXT,                              -- identifier of the author who uploaded it
            created TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX documents_owner ON documents(owner)")
    db.execute(
        """CREATE TABLE document_chunks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            page_start INTEGER NOT NULL,
            page_end INTEGER NOT NULL,
            heading TEXT NOT NULL DEFAULT '',
            text TEXT NOT NULL,
            UNIQUE (document_id, seq)
        )"""
    )
    db.execute(
        """CREATE VIRTUAL TABLE document_chunks_fts USING fts5(
            heading, text, content='document_chunks', content_rowid='id', tokenize='porter unicode61'
        )"""
    )
    db.execute(
        """CREATE TRIGGER document_chunks_ai AFTER INSERT ON document_chunks BEGIN
            INSERT INTO document_chunks_fts (rowid, heading, text) VALUES (new.id, new.heading, new.text);
        END"""
    )
    db.execute(
        """CREATE TRIGGER document_chunks_ad AFTER DELETE ON document_chunks BEGIN
            INSERT INTO document_chunks_fts (document_chunks_fts, rowid, heading, text)
            VALUES ('delete', old.id, old.heading, old.text);
        END"""
    )
    db.execute(
        """CREATE TRIGGER document_chunks_au AFTER UPDATE ON document_chunks BEGIN
            INSERT INTO document_chunks_fts (document_chunks_fts, rowid, heading, text)
            VALUES ('delete', old.id, old.heading, old.text);
            INSERT INTO document_chunks_fts (rowid, heading, text) VALUES (new.id, new.heading, new.text);
        END"""
    )
    db.execute(
        """CREATE TABLE document_sections (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            page_start INTEGER NOT NULL,
            page_end INTEGER NOT NULL,
            chunk_start INTEGER NOT NULL,
            chunk_end INTEGER NOT NULL,
            title TEXT NOT NULL,
            summary TEXT NOT NULL,
            model TEXT NOT NULL DEFAULT '',
            created TEXT NOT NULL,
            UNIQUE (document_id, seq)
        )"""
    )


def _environment_variant_index(db: sqlite_utils.Database) -> None:
    # language variants are looked up by their source for every course listed (`translations`) and
    # every player load and tracking event (embeds.player.played_row): no full scan each time
    db.execute("CREATE INDEX IF NOT EXISTS courses_translation_of ON courses(translation_of)")


def _control_admins(db: sqlite_utils.Database) -> None:
    """The operator's console (appliance.admin): administrators, their sessions, setup links."""
    db.execute(
        """CREATE TABLE admins (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL UNIQUE,
            hash TEXT NOT NULL,                -- scrypt$n$r$p$salt$digest of the passphrase
            created TEXT NOT NULL,
            failed INTEGER NOT NULL DEFAULT 0, -- consecutive failed logins
            locked_until TEXT,                 -- ISO time; refused until then
            last_login TEXT
        )"""
    )
    db.execute(
        """CREATE TABLE admin_sessions (
            token_hash TEXT PRIMARY KEY,       -- SHA-256 of the cookie value; the value is never stored
            admin_id INTEGER NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
            csrf TEXT NOT NULL,
            created TEXT NOT NULL,
            last_seen TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE admin_setup_tokens (
            token_hash TEXT PRIMARY KEY,       -- SHA-256 of the link's token
            created TEXT NOT NULL,
            expires TEXT NOT NULL,
            used TEXT
        )"""
    )


def _audit_actor_index(db: sqlite_utils.Database) -> None:
    # the console's "last used" per API key and its actor filter look entries up by actor
    db.execute("CREATE INDEX IF NOT EXISTS audit_actor ON audit(actor, seq)")


def _environment_job_events(db: sqlite_utils.Database) -> None:
    """A job's progress events and its cancel request, for the other processes of `serve --workers N`:
    any worker streams any job's events and cancels it (appliance.ai.jobs)."""
    db.execute("ALTER TABLE jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0")
    db.execute(
        """CREATE TABLE job_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
            event TEXT NOT NULL                      -- JSON, as the server-sent event carries it
        )"""
    )
    db.execute("CREATE INDEX job_events_job ON job_events(job_id, id)")


def _environment_xapi(db: sqlite_utils.Database) -> None:
    """xAPI statements to the operator's LRS endpoints (appliance.xapi): endpoints, outbox, attempt log."""
    db.execute(
        """CREATE TABLE lrs_endpoints (
            id INTEGER PRIMARY KEY AUTOINCREMENT, url TEXT NOT NULL,  -- statements go to <url>/statements
            auth TEXT NOT NULL CHECK (auth IN ('basic', 'oauth2')),
            username TEXT NOT NULL, secret TEXT NOT NULL,   -- Basic user/password or OAuth2 client id/secret
            token_url TEXT, scope TEXT,                     -- OAuth2 client credentials
            enabled INTEGER NOT NULL DEFAULT 1, created TEXT NOT NULL, updated TEXT NOT NULL)"""
    )
    db.execute(
        """CREATE TABLE xapi_outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT, statement_id TEXT NOT NULL,  -- uuid5 of the event's identity
            endpoint_id INTEGER NOT NULL REFERENCES lrs_endpoints(id) ON DELETE CASCADE,
            identifier TEXT NOT NULL,                -- the learner, so a hard deletion finds their rows
            verb TEXT NOT NULL, body TEXT NOT NULL,  -- the statement, exactly as sent
            status TEXT NOT NULL DEFAULT 'pending',  -- pending | delivered | failed | refused
            attempts INTEGER NOT NULL DEFAULT 0, next_attempt TEXT NOT NULL, last_error TEXT,
            created TEXT NOT NULL, delivered TEXT, UNIQUE (endpoint_id, statement_id))"""
    )
    db.execute("CREATE INDEX xapi_outbox_due ON xapi_outbox(status, next_attempt)")
    db.execute("CREATE INDEX xapi_outbox_identifier ON xapi_outbox(identifier)")
    db.execute(
        """CREATE TABLE xapi_attempts (id INTEGER PRIMARY KEY AUTOINCREMENT,
            outbox_id INTEGER NOT NULL REFERENCES xapi_outbox(id) ON DELETE CASCADE,
            time TEXT NOT NULL, status_code INTEGER, error TEXT, duration_ms REAL)"""
    )
    db.execute("CREATE INDEX xapi_attempts_outbox ON xapi_attempts(outbox_id)")


def _control_lti(db: sqlite_utils.Database) -> None:
    """LTI 1.3 (docs/lti.md): the platforms each workspace registered, and the tool's server-side
    login state (nonces, states, launch data) shared by every worker process."""
    db.execute(
        """CREATE TABLE lti_platforms (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
            environment TEXT NOT NULL CHECK (environment IN ('test', 'production')),
            issuer TEXT NOT NULL,
            client_id TEXT NOT NULL,
            deployment_ids TEXT NOT NULL,      -- JSON list
            auth_login_url TEXT NOT NULL,
            auth_token_url TEXT NOT NULL,
            auth_audience TEXT,
            keyset TEXT,                       -- JSON Web Key Set of the platform's public keys
            keyset_url TEXT,                   -- only when the operator gives one
            created TEXT NOT NULL,
            UNIQUE (issuer, client_id)
        )"""
    )
    db.execute(
        """CREATE TABLE lti_cache (
            k TEXT PRIMARY KEY,                -- a nonce, a state or a launch id (random)
            v TEXT NOT NULL,                   -- JSON
            expires REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX lti_cache_expires ON lti_cache(expires)")


def _environment_lti(db: sqlite_utils.Database) -> None:
    """LTI Assignment and Grade Services: where a learner's score goes, and the grades waiting to go."""
    db.execute(
        """CREATE TABLE lti_grade_links (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            course_id INTEGER NOT NULL,
            identifier TEXT NOT NULL,          -- lti:<issuer>:<sub>
            platform_id INTEGER NOT NULL,
            sub TEXT NOT NULL,
            endpoint TEXT NOT NULL,            -- JSON: the launch's AGS endpoint claim
            updated TEXT NOT NULL,
            UNIQUE (course_id, identifier)
        )"""
    )
    db.execute(
        """CREATE TABLE lti_outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            link_id INTEGER NOT NULL REFERENCES lti_grade_links(id) ON DELETE CASCADE,
            score REAL,
            completed TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',   -- pending, delivered, failed
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt TEXT NOT NULL,
            last_error TEXT,
            created TEXT NOT NULL,
            delivered TEXT
        )"""
    )
    db.execute("CREATE INDEX lti_outbox_due ON lti_outbox(status, next_attempt)")


def _environment_image_generations(db: sqlite_utils.Database) -> None:
    """One row per image made (appliance.images.service): the usage API's image_generations."""
    db.execute(
        """CREATE TABLE image_generations (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            client_identifier TEXT,                  -- the client the image was made for; NULL: none
            source TEXT NOT NULL,                    -- library | engine:<name>
            object_id TEXT NOT NULL,                 -- the image in the object store
            created TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX image_generations_created ON image_generations(created)")


MIGRATIONS: dict[str, list[Migration]] = {
    "control": [_control_v1, _control_admins, _control_lti],
    "audit": [_audit_v1, _audit_actor_index],
    "environment": [
        _environment_v1, _environment_embed_sessions, _environment_jobs, _environment_documents,
        _environment_variant_index, _environment_job_events, _environment_xapi,
        _environment_lti, _environment_image_generations,
    ],
}


def migrate(database: Database, kind: str, meta: dict[str, str]) -> int:
    """Bring a database to the newest schema of its kind and check (or stamp) its identity."""
    steps = MIGRATIONS[kind]

    def run(db: sqlite_utils.Database) -> int:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > len(steps):
            raise StorageError(f"{database.name} has schema {version}, newer than this release knows")
        for number in range(version + 1, len(steps) + 1):
            with db.atomic():
                steps[number - 1](db)
                if kind in capture.CAPTURED_KINDS:  # a rebuilt table loses its triggers: re-create them
                    capture.install_triggers(db)
                db.execute(f"PRAGMA user_version = {number}")
        stamped = {k: v for k, v in db.execute("SELECT k, v FROM app_meta").fetchall()}
        wanted = {"kind": kind, **meta}
        if not stamped:
            with db.atomic():
                for k, v in wanted.items():
                    db.execute("INSERT INTO app_meta (k, v) VALUES (?, ?)", (k, v))
        elif {k: stamped.get(k) for k in wanted} != wanted:
            raise StorageError(
                f"{database.name} belongs to {stamped}, expected {wanted}; refusing to mix data"
            )
        return len(steps)

    version = database.write(run, transactional=False)
    if kind in capture.CAPTURED_KINDS:
        capture.install(database)  # change capture for point-in-time recovery, kept in step
    return version
