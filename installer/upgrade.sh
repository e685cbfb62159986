#!/usr/bin/env bash
# Offline upgrade of an installed appliance (run as root), with automatic rollback.
#
#   installer/upgrade.sh NEW_BINARY SHA256 [--backup-dir DIR] [--timeout S] [--dry-run]
#   installer/upgrade.sh --rollback
#
# 1. The new binary's sha256 must equal SHA256 (from the release notes, obtained out of band).
# 2. It must run (`--version`) on this machine.
# 3. The service stops; with --backup-dir the data directory is copied there first (recommended:
#    a new release may migrate the databases, and an older binary may not open them again).
# 4. The running binary becomes /usr/local/bin/appliance.prev, the new one takes its place.
# 5. The service starts and /health must answer within --timeout seconds (default 60).
#    If not, the previous binary is put back, the service restarted, and the script exits 1.
# --rollback swaps /usr/local/bin/appliance.prev back in by hand (and restarts the service).
set -euo pipefail

BIN_PATH="/usr/local/bin/appliance"
PREV="$BIN_PATH.prev"
DATA_DIR="/var/lib/appliance"
ENV_FILE="/etc/appliance/appliance.env"
SERVICE="appliance.service"

new=""
want=""
backup_dir=""
timeout=60
dry=0
rollback=0

die() { echo "upgrade: $*" >&2; exit 2; }
usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --backup-dir) backup_dir="$2"; shift 2 ;;
        --timeout) timeout="$2"; shift 2 ;;
        --dry-run) dry=1; shift ;;
        --rollback) rollback=1; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *)
            if [[ -z "$new" ]]; then new="$1"; elif [[ -z "$want" ]]; then want="$1"; else die "too many arguments"; fi
            shift ;;
    esac
done

run() {
    if [[ $dry == 1 ]]; then
        printf '+'; printf ' %q' "$@"; printf '\n'
    else
        "$@"
    fi
}

# The address /health answers on, from the service's environment file (as install.sh wrote it).
health_url() {
    local host="127.0.0.1" port="8080" cert=""
    if [[ -r "$ENV_FILE" ]]; then
        # shellcheck disable=SC1090
        host="$(. "$ENV_FILE"; echo "${APPLIANCE_SERVER_HOST:-127.0.0.1}")"
        # shellcheck disable=SC1090
        port="$(. "$ENV_FILE"; echo "${APPLIANCE_SERVER_PORT:-8080}")"
        # shellcheck disable=SC1090
        cert="$(. "$ENV_FILE"; echo "${APPLIANCE_SERVER_TLS_CERT:-}")"
    fi
    [[ "$host" == "0.0.0.0" || "$host" == "::" || -z "$host" ]] && host="127.0.0.1"
    [[ "$host" == *:* ]] && host="[$host]"
    if [[ -n "$cert" ]]; then echo "https://$host:$port/health"; else echo "http://$host:$port/health"; fi
}

healthy() {  # url: one probe; curl, else wget, else a TCP connect while the unit is active
    local url="$1"
    if command -v curl >/dev/null; then
        curl -fsk --max-time 3 -o /dev/null "$url"
    elif command -v wget >/dev/null; then
        wget -q --no-check-certificate -T 3 -O /dev/null "$url"
    else
        local hostport="${url#*://}"; hostport="${hostport%%/*}"
        systemctl is-active --quiet "$SERVICE" &&
            timeout 3 bash -c "exec 3<>/dev/tcp/${hostport%:*}/${hostport##*:}" 2>/dev/null
    fi
}

wait_healthy() {
    local url deadline
    url="$(health_url)"
    [[ $dry == 1 ]] && { echo "+ wait for $url (up to ${timeout}s)"; return 0; }
    deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)); do
        if healthy "$url"; then
            echo "upgrade: $url answers"
            return 0
        fi
        sleep 1
    done
    echo "upgrade: $url did not answer within ${timeout}s" >&2
    return 1
}

[[ $dry == 1 || $EUID -eq 0 ]] || die "run as root (or try --dry-run)"

if [[ $rollback == 1 ]]; then
    [[ -f "$PREV" ]] || die "no previous binary at $PREV"
    run systemctl stop "$SERVICE"
    run cp -p "$BIN_PATH" "$BIN_PATH.failed"
    run mv -f "$PREV" "$BIN_PATH"
    run systemctl start "$SERVICE"
    wait_healthy || exit 1
    echo "upgrade: rolled back to the previous binary ($($BIN_PATH --version 2>/dev/null || echo unknown))"
    exit 0
fi

[[ -n "$new" && -n "$want" ]] || { usage >&2; exit 2; }
[[ -f "$new" ]] || die "no file $new"
want="$(tr 'A-F' 'a-f' <<<"$want")"
[[ "$want" =~ ^[0-9a-f]{64}$ ]] || die "SHA256 must be 64 hex characters"
got="$(sha256sum "$new" | cut -d' ' -f1)"
if [[ "$got" != "$want" ]]; then
    die "sha256 mismatch for $new: expected $want, got $got; nothing changed"
fi
echo "upgrade: sha256 verified ($got)"
new_version="$("$new" --version)" || die "$new does not run on this machine; nothing changed"
old_version="$("$BIN_PATH" --version 2>/dev/null || echo none)"
echo "upgrade: $old_version -> $new_version"
[[ $dry == 1 || -f "$BIN_PATH" ]] || die "$BIN_PATH is not installed; use install.sh"

# Stage first (same filesystem, so the swap below is a rename), then stop.
run install -m 0755 -o root -g root "$new" "$BIN_PATH.new"
run systemctl stop "$SERVICE"
if [[ -n "$backup_dir" ]]; then
    dest="$backup_dir/appliance-data-$(date -u +%Y%m%dT%H%M%SZ)"
    echo "upgrade: copying $DATA_DIR to $dest"
    run install -d -m 0700 "$backup_dir"
    run cp -a "$DATA_DIR" "$dest"
fi
run cp -p "$BIN_PATH" "$PREV"
run mv -f "$BIN_PATH.new" "$BIN_PATH"
run systemctl start "$SERVICE"

if wait_healthy; then
    echo "upgrade: done; the previous binary stays at $PREV (installer/upgrade.sh --rollback)"
    exit 0
fi

echo "upgrade: the new binary did not come up; rolling back" >&2
run journalctl -u "$SERVICE" -n 30 --no-pager >&2 || true
run systemctl stop "$SERVICE" || true
run cp -p "$BIN_PATH" "$BIN_PATH.failed"
run cp -p "$PREV" "$BIN_PATH"
run systemctl start "$SERVICE"
if wait_healthy; then
    echo "upgrade: rolled back to $old_version; the rejected binary is $BIN_PATH.failed" >&2
else
    echo "upgrade: ROLLBACK ALSO FAILED: check 'journalctl -u appliance'" >&2
    [[ -n "$backup_dir" ]] && echo "upgrade: the data directory copy is in $backup_dir" >&2
fi
exit 1
