"""`appliance upgrade BUNDLE`: install a signed release bundle, or change nothing.

The order is the guarantee:
1. verify the bundle whole (appliance.release.bundle) into a private staging directory, check the
   version (never older than, nor the same as, the installed one) and the channel (`controlled`
   refuses releases younger than 14 days unless forced), and that the staged binary runs here and
   reports the bundle's version. A refusal here changes nothing but the audit log;
2. stop the service (`--service`), or refuse while a server holds the data directory;
3. snapshot every database (the backup machinery) and plan the rollback restore to that moment;
4. keep the installed binary as `<path>.prev` and rename the new one over it;
5. start the new binary in a trial server on a loopback port: opening the data directory runs its
   migrations, and `/health` must answer 200 within the timeout; then start the service and wait
   for its `/health` too;
6. on any failure in 5: the rejected binary becomes `<path>.failed`, the previous one comes back,
   the databases are restored to the snapshot of step 3 (a migration is undone), the service
   restarts. Every step is printed and written to the audit log (the audit log is never rolled back).

Run as root (installer/upgrade.sh) with a data directory owned by another user, the data-directory
steps run with that user's effective ids, so every file they write stays the service's own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from appliance import config
from appliance.backup.format import iso as iso_us
from appliance.backup.format import now_us
from appliance.backup.restore import InPlacePlan, apply_in_place, plan_in_place
from appliance.backup.shipping import ship
from appliance.backup.snapshots import take_snapshot
from appliance.backup.targets import RestoreError, server_running
from appliance.release import bundle, signing
from appliance.runtime import AUDIT_KEY, Runtime, backups_of
from appliance.security.audit import MAC_KEY, AuditEvent, AuditLog
from appliance.storage import crypto, files
from appliance.storage.database import Database
from appliance.storage.keyring import Keyring

Say = Callable[[str], None]


class UpgradeError(Exception):
    """The upgrade was refused or rolled back; the message says which and why."""


@dataclass(frozen=True)
class Options:
    bundle: Path
    install_path: Path
    service: str | None = None  # a systemd unit to stop and start around the swap
    force: bool = False  # the controlled channel's 14 days
    timeout: float = 120.0  # for each /health wait (a model loading keeps /health at 503)


def trusted_keys(settings: config.Settings, say: Say) -> dict[str, Ed25519PublicKey]:
    """The shipped release keys, plus `upgrades.dev_key` when the operator set one (said loudly)."""
    keys = signing.shipped_keys()
    if settings.upgrades.dev_key:
        try:
            dev = signing.load_public(Path(settings.upgrades.dev_key).expanduser())
        except signing.SignatureError as exc:
            raise UpgradeError(f"upgrades.dev_key: {exc}") from None
        say(f"upgrade: WARNING: also trusting the development key {signing.key_id(dev)} (upgrades.dev_key)")
        keys[signing.key_id(dev)] = dev
    return keys


def program_version(path: Path) -> str:
    """What `path --version` reports (`appliance X`)."""
    try:
        result = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=120, cwd="/"
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UpgradeError(f"{path} does not run on this machine ({exc})") from None
    words = result.stdout.split()
    if result.returncode != 0 or len(words) != 2 or words[0] != "appliance":
        raise UpgradeError(f"{path} does not run on this machine (--version: {result.stdout.strip()[:80]!r})")
    return str(words[1])


def check_policy(
    release: bundle.Release, installed: str, channel: str, force: bool, now: dt.datetime
) -> str | None:
    """Refuse what the version and the channel do not allow; a forced controlled upgrade returns why
    it needed forcing (for the audit log)."""
    if bundle.version_tuple(release.version) < bundle.version_tuple(installed):
        raise UpgradeError(f"the bundle's version {release.version} is older than the installed {installed}")
    if release.version == installed:
        raise UpgradeError(f"version {installed} is already installed")
    age = now - release.released
    minimum = dt.timedelta(days=config.CONTROLLED_MIN_AGE_DAYS)
    if channel != "controlled" or age >= minimum:
        return None
    why = (
        f"released {bundle.iso(release.released)}, {age.total_seconds() / 86400:.1f} days ago; the controlled "
        f"channel installs releases at least {config.CONTROLLED_MIN_AGE_DAYS} days old"
    )
    if not force:
        raise UpgradeError(f"{why} (--force installs it anyway, audited)")
    return why


def _owner(data_dir: Path) -> tuple[int, int] | None:
    """The data directory's owner when we are root and it is someone else (the service's user)."""
    st = data_dir.stat()
    return (st.st_uid, st.st_gid) if os.geteuid() == 0 and st.st_uid != 0 else None


@contextlib.contextmanager
def _effective(user: tuple[int, int] | None) -> Iterator[None]:
    """Files written inside belong to `user` (root keeps its saved ids and takes them back after)."""
    if user is None:
        yield
        return
    os.setegid(user[1])
    os.seteuid(user[0])
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _health(url: str) -> int | None:
    """/health's status code, or None while nothing answers."""
    # our own server on loopback, with the certificate `init` made for it: no name to check
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=3, context=context) as answer:  # noqa: S310 - http(s) only
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return None


def _wait_healthy(url: str, timeout: float, alive: Callable[[], bool] = lambda: True) -> str | None:
    """None once /health answers 200; what went wrong otherwise. No answer yet, or 503 (a model
    still loading), is waited for; any other answer is final."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        status = _health(url)
        if status == 200:
            return None
        if status not in (None, 503):
            return f"{url} answered {status}"
        time.sleep(0.2)
    return f"{url} did not answer 200 within {timeout:g} s"


def health_url(settings: config.Settings, port: int | None = None) -> str:
    host = settings.server.host
    host = "127.0.0.1" if host in {"", "0.0.0.0", "::"} else host  # noqa: S104 - a listen address, read
    host = f"[{host}]" if ":" in host else host
    scheme = "https" if settings.server.tls_cert else "http"
    return f"{scheme}://{host}:{port or settings.server.port}/health"


class Upgrade:
    def __init__(
        self,
        settings: config.Settings,
        opener: Callable[[], Runtime],
        options: Options,
        say: Say,
        passphrase: str | None = None,
    ) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir
        self.open = opener
        self.options = options
        self.say = say
        self.passphrase = passphrase
        self.user = _owner(self.data_dir)
        path = options.install_path
        self.prev, self.failed = path.with_name(path.name + ".prev"), path.with_name(path.name + ".failed")

    def audit(self, action: str, target: str) -> None:
        """One audit entry, through the audit database alone: after the swap the other databases
        may carry a newer release's schema (or, after a failed migration, be unreadable), and the
        upgrade's record must still be written (the audit log is never rolled back)."""
        with _effective(self.user):
            keyring = Keyring(self.data_dir, crypto.load_master_key(self.data_dir, self.passphrase))
            database = Database(
                self.data_dir / "audit.db", keyring.get(AUDIT_KEY), name="audit",
                synchronous=self.settings.storage.synchronous.upper(),
            )
            log = AuditLog(database, keyring.get(MAC_KEY), self.data_dir)
            try:
                log.record_sync(AuditEvent(
                    actor="admin:cli", method="CLI", route=action, status=0, target=target[:500],
                    request_id=secrets.token_hex(8),
                ))
            finally:
                log.close()
                database.close()

    def run(self) -> bundle.Release:
        staging = Path(tempfile.mkdtemp(prefix="appliance-upgrade-"))
        try:
            release, installed = self._verify(staging)
            self._install(release, installed)
            return release
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _verify(self, staging: Path) -> tuple[bundle.Release, str]:
        o = self.options
        self.say(f"upgrade: verifying {o.bundle}")
        try:
            if not o.install_path.is_file():
                raise UpgradeError(f"{o.install_path} is not installed (installer/install.sh installs it)")
            release = bundle.verify(o.bundle, trusted_keys(self.settings, self.say), staging / "bundle")
            installed = program_version(o.install_path)
            forced = check_policy(release, installed, self.settings.upgrades.channel, o.force, dt.datetime.now(dt.UTC))
            staged = program_version(release.binary)
            if staged != release.version:
                raise UpgradeError(f"the bundle's binary reports version {staged}, its release.json {release.version}")
            if not o.service and server_running(self.data_dir):
                raise UpgradeError(f"a server is running on {self.data_dir}: stop it, or give --service UNIT")
        except (bundle.BundleError, UpgradeError) as exc:
            self.audit("upgrade refused", f"{o.bundle.name}: {exc}")
            raise UpgradeError(f"{exc}; nothing was changed") from None
        summary = (
            f"{installed} -> {release.version} (released {bundle.iso(release.released)}, signed by key "
            f"{release.key_id}, channel {self.settings.upgrades.channel})"
        )
        self.say(f"upgrade: bundle verified: {summary}")
        self.audit("upgrade verified", summary)
        if forced:
            self.say(f"upgrade: forced: {forced}")
            self.audit("upgrade forced", f"{release.version}: {forced}")
        return release, installed

    def _systemctl(self, verb: str) -> None:
        unit = self.options.service or ""
        self.say(f"upgrade: systemctl {verb} {unit}")
        result = subprocess.run(["systemctl", verb, unit], capture_output=True, text=True)
        if result.returncode != 0:
            raise UpgradeError(f"systemctl {verb} {unit} failed: {result.stderr.strip()}")

    def _snapshot(self, reason: str) -> InPlacePlan:
        """A snapshot of every database now, and the restore that would bring them back to it."""
        with _effective(self.user):
            runtime = self.open()
            try:
                for t in runtime.backups.targets():
                    ship(runtime.backups, t)
                    take_snapshot(runtime.backups, t, reason)
                return plan_in_place(runtime.backups, now_us())
            finally:
                runtime.close()

    def _swap(self, release: bundle.Release) -> None:
        path = self.options.install_path
        staged = path.with_name(path.name + ".new")
        shutil.copyfile(release.binary, staged)
        staged.chmod(0o755)
        shutil.copy2(path, self.prev)
        files.durable_replace(staged, path)
        self.say(f"upgrade: {path} replaced; the previous binary is {self.prev}")

    def _trial(self) -> str | None:
        """Start the new binary on a loopback port (its migrations run as it opens the data
        directory); None when /health answered 200, else what went wrong."""
        port = _free_port()
        url = health_url(self.settings, port)
        env = dict(os.environ)
        if self.passphrase is not None:
            env["APPLIANCE_PASSPHRASE"] = self.passphrase
        command = [str(self.options.install_path), "serve", "--data-dir", str(self.data_dir),
                   "--host", "127.0.0.1", "--port", str(port)]
        self.say(f"upgrade: migrations and health: trial server on {url}")
        with tempfile.TemporaryFile() as log:
            uid, gid = self.user or (None, None)
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd="/",
                                       user=uid, group=gid, extra_groups=None if uid is None else [])
            try:
                problem = _wait_healthy(url, self.options.timeout, lambda: process.poll() is None)
            finally:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                    try:
                        process.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()
            log.seek(0)
            tail = log.read()[-600:].decode(errors="replace").strip().replace("\n", " | ")
        if problem is None:
            return None
        if process.returncode not in (None, 0, -signal.SIGTERM):
            return f"the trial server exited with status {process.returncode}: {tail}"
        return f"the trial server's {problem}: {tail}"

    def _service_up(self) -> str | None:
        self._systemctl("start")
        problem = _wait_healthy(health_url(self.settings), self.options.timeout)
        return None if problem is None else f"the service's {problem}"

    def _install(self, release: bundle.Release, installed: str) -> None:
        if self.options.service:
            self._systemctl("stop")
        plan = self._snapshot(f"before upgrade to {release.version}")
        self.say(f"upgrade: snapshot of {len(plan.steps)} databases taken ({iso_us(plan.until_us)})")
        self.audit("upgrade snapshot", f"{len(plan.steps)} databases at {iso_us(plan.until_us)}")
        self._swap(release)
        self.audit("upgrade swapped binary", f"{installed} -> {release.version}; previous kept as {self.prev.name}")
        problem = self._trial()
        if problem is None and self.options.service:
            problem = self._service_up()
        if problem is None:
            self.audit("upgrade done", f"{release.version} is healthy")
            self.say(f"upgrade: done: {release.version} answers /health; previous binary at {self.prev}")
            return
        self.audit("upgrade health failed", problem)
        self._rollback(plan, installed, problem)

    def _rollback(self, plan: InPlacePlan, installed: str, problem: str) -> None:
        self.say(f"upgrade: FAILED: {problem}; rolling back")
        path = self.options.install_path
        with contextlib.suppress(UpgradeError):
            if self.options.service:
                self._systemctl("stop")
        shutil.copy2(path, self.failed)
        back = path.with_name(path.name + ".new")
        shutil.copy2(self.prev, back)
        files.durable_replace(back, path)
        self.say(f"upgrade: previous binary back in {path}; the rejected one is {self.failed}")
        try:
            with _effective(self.user):
                apply_in_place(plan, lambda: backups_of(self.open))
        except (RestoreError, OSError) as exc:
            self.audit("upgrade rollback restore failed", str(exc))
            raise UpgradeError(
                f"{problem}; the previous binary is back but restoring the databases to "
                f"{iso_us(plan.until_us)} failed ({exc}): run `appliance restore --to {iso_us(plan.until_us)}`"
            ) from None
        self.say(f"upgrade: databases restored to {iso_us(plan.until_us)}")
        self.audit("upgrade rolled back", f"to {installed}, databases restored to {iso_us(plan.until_us)}: {problem}")
        still = self._service_up() if self.options.service else None
        if still:
            raise UpgradeError(f"{problem}; ROLLBACK ALSO FAILED: {still}")
        raise UpgradeError(
            f"{problem}; rolled back to {installed} (previous binary and databases as of {iso_us(plan.until_us)})"
        )
