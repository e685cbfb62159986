#!/usr/bin/env bash
# Offline upgrade of an installed appliance from a signed release bundle (run as root).
#
#   installer/upgrade.sh BUNDLE [--force] [--timeout S] [--dry-run]
#   installer/upgrade.sh --rollback
#
# BUNDLE is a release bundle (appliance-<version>.tar, made by `make release`). The installed
# program does the work (`appliance upgrade`, docs/operations.md "Upgrades"), in this order:
# 1. verifies the bundle's Ed25519 signature against the release keys it ships and every member's
#    SHA-256, refuses symlinks, hard links, absolute or `..` paths, an older or the same version,
#    and on the controlled channel ([upgrades] channel) a release younger than 14 days unless
#    --force (audited). A refusal changes nothing;
# 2. stops the service and snapshots every database (the backup machinery);
# 3. keeps the running binary as /usr/local/bin/appliance.prev and puts the new one in place;
# 4. runs the new binary's migrations in a trial server whose /health must answer, then starts the
#    service, whose /health must answer within --timeout seconds (default 120);
# 5. if not: the previous binary comes back (the rejected one is appliance.failed), the databases
#    are restored to the snapshot of step 2, the service restarts, and the script exits 1.
# Every step is printed and written to the audit log. The data-directory steps run as `appliance`.
# --rollback later puts /usr/local/bin/appliance.prev back by hand (the binary only; restore the
# databases with `appliance restore --to <the upgrade's snapshot time>` if the new one migrated them).
# --dry-run prints the command that would run instead of running it.
set -euo pipefail

BIN_PATH="/usr/local/bin/appliance"
PREV="$BIN_PATH.prev"
DATA_DIR="/var/lib/appliance"
ENV_FILE="/etc/appliance/appliance.env"
SERVICE="appliance.service"

bundle=""
force=0
timeout=120
dry=0
rollback=0

die() { echo "upgrade: $*" >&2; exit 2; }
usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --force) force=1; shift ;;
        --timeout) timeout="$2"; shift 2 ;;
        --dry-run) dry=1; shift ;;
        --rollback) rollback=1; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) [[ -z "$bundle" ]] || die "too many arguments (the sha256 of older releases is now the bundle's signed SHA256SUMS)"
           bundle="$1"; shift ;;
    esac
done

run() {
    if [[ $dry == 1 ]]; then
        printf '+'; printf ' %q' "$@"; printf '\n'
    else
        "$@"
    fi
}

[[ $dry == 1 || $EUID -eq 0 ]] || die "run as root (or try --dry-run)"
[[ "$timeout" =~ ^[0-9]+$ ]] || die "--timeout must be a number of seconds"

# The service's settings (address, TLS) so that the health checks probe where it listens.
if [[ -r "$ENV_FILE" ]]; then
    set -a
    # shellcheck disable=SC1090
    . "$ENV_FILE"
    set +a
fi

if [[ $rollback == 1 ]]; then
    [[ -f "$PREV" ]] || die "no previous binary at $PREV"
    run systemctl stop "$SERVICE"
    run cp -p "$BIN_PATH" "$BIN_PATH.failed"
    run cp -p "$PREV" "$BIN_PATH"
    run systemctl start "$SERVICE"
    echo "upgrade: the previous binary is back; if the rejected release migrated the databases, restore them:"
    echo "upgrade:   sudo -u appliance $BIN_PATH restore --to <the upgrade's snapshot time> --data-dir $DATA_DIR"
    exit 0
fi

[[ -n "$bundle" ]] || { usage >&2; exit 2; }
[[ -f "$bundle" ]] || die "no file $bundle"
[[ $dry == 1 || -x "$BIN_PATH" ]] || die "$BIN_PATH is not installed; use install.sh"
bundle="$(cd "$(dirname "$bundle")" && pwd)/$(basename "$bundle")"

args=(upgrade "$bundle" --data-dir "$DATA_DIR" --install-path "$BIN_PATH" --service "$SERVICE" --timeout "$timeout")
[[ $force == 1 ]] && args+=(--force)
# from / : the appliance user may not read the caller's working directory
(cd / && run "$BIN_PATH" "${args[@]}")
