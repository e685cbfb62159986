#!/usr/bin/env bash
# Remove an installed appliance (run as root). A DRY RUN unless --apply: it prints what it would do.
#
#   installer/uninstall.sh [--keep-data | --shred-data] [--apply] [--root DIR]
#
# Always: stops and disables appliance.service, removes its unit, /usr/local/bin/appliance (and
# appliance.prev, .failed, .new), /etc/appliance (the environment file, your TLS copies) and
# /usr/local/share/doc/appliance.
# --keep-data (the default): /var/lib/appliance and the `appliance` user stay; a later install.sh
#   finds the data directory and serves it again.
# --shred-data: the data directory goes too, keys first: master.key, master.salt and keyring.json
#   are overwritten (shred) and deleted, which leaves every other file (all encrypted) unreadable,
#   then every file is shredded and the directory removed, and the `appliance` user deleted.
#   Backups kept outside the data directory ([backup] path) are named, never removed: delete
#   them yourself. On SSDs and journaling or copy-on-write file systems an overwrite may not
#   reach the old blocks; removing the keys is what makes the data unreadable.
# --root DIR acts on DIR/etc, DIR/usr/local and DIR/var/lib instead of /, and leaves systemd and
#   the user alone (for tests and images).
set -euo pipefail

root=""
mode="keep"
keep_seen=0
apply=0

die() { echo "uninstall: $*" >&2; exit 2; }
usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --keep-data) keep_seen=1; shift ;;
        --shred-data) mode="shred"; shift ;;
        --apply) apply=1; shift ;;
        --root) root="${2%/}"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
[[ $mode == shred && $keep_seen == 1 ]] && die "--keep-data and --shred-data exclude each other"

USER_NAME="appliance"
SERVICE="appliance.service"
DATA_DIR="$root/var/lib/appliance"
BIN_PATH="$root/usr/local/bin/appliance"
UNIT="$root/etc/systemd/system/$SERVICE"
ETC_DIR="$root/etc/appliance"
DOC_DIR="$root/usr/local/share/doc/appliance"
system=1
[[ -n "$root" ]] && system=0

run() {
    if [[ $apply == 0 ]]; then
        printf 'would run:'; printf ' %q' "$@"; printf '\n'
    else
        printf '+'; printf ' %q' "$@"; printf '\n'
        "$@"
    fi
}

[[ $apply == 0 || $EUID -eq 0 || $system == 0 ]] || die "run as root (without --apply it only prints the plan)"
[[ $apply == 1 ]] || echo "uninstall: DRY RUN: nothing is changed; add --apply to do this"

# -- the service ---------------------------------------------------------------------------------
if [[ $system == 1 ]] && command -v systemctl >/dev/null; then
    run systemctl disable --now "$SERVICE" || true
fi
[[ -e "$UNIT" ]] && run rm -f "$UNIT"
[[ $system == 1 ]] && command -v systemctl >/dev/null && run systemctl daemon-reload

# -- program, configuration, documentation ------------------------------------------------------
for f in "$BIN_PATH" "$BIN_PATH.prev" "$BIN_PATH.failed" "$BIN_PATH.new"; do
    [[ -e "$f" ]] && run rm -f "$f"
done
[[ -e "$ETC_DIR" ]] && run rm -rf "$ETC_DIR"
[[ -e "$DOC_DIR" ]] && run rm -rf "$DOC_DIR"

# -- data ----------------------------------------------------------------------------------------
outside=""
if [[ -f "$DATA_DIR/appliance.toml" ]]; then  # [backup] path = "..." (empty: inside the data directory)
    outside="$(awk '/^\[/{s=($0=="[backup]")} s && /^[ \t]*path[ \t]*=/{sub(/^[^=]*=[ \t]*"/,""); sub(/".*$/,""); print; exit}' "$DATA_DIR/appliance.toml")"
fi
if [[ $mode == keep ]]; then
    echo "uninstall: keeping $DATA_DIR (every file encrypted) and the $USER_NAME user; --shred-data removes them"
else
    if [[ -d "$DATA_DIR" ]]; then
        for key in master.key master.salt keyring.json; do  # the keys first: without them nothing else reads
            [[ -f "$DATA_DIR/$key" ]] && run shred --force --zero --remove "$DATA_DIR/$key"
        done
        run find "$DATA_DIR" -type f -exec shred --force --zero --remove {} +
        run rm -rf "$DATA_DIR"
    fi
    if [[ $system == 1 ]] && getent passwd "$USER_NAME" >/dev/null; then
        run userdel "$USER_NAME"
    fi
fi
if [[ -n "$outside" ]]; then
    echo "uninstall: backups outside the data directory are NOT removed: $outside (delete them yourself)"
fi
echo "uninstall: $([[ $apply == 1 ]] && echo done || echo "dry run finished; nothing was changed")"
