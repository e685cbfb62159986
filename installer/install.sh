#!/usr/bin/env bash
# Install the appliance as a systemd service on Debian (run as root). Safe to run again.
#
#   installer/install.sh [--binary PATH] [--host H] [--port P] [--tls-cert F --tls-key F | --no-tls]
#                        [--no-start] [--dry-run]
#
# - system user and group `appliance` (no shell, no login)
# - /var/lib/appliance (0700, the data directory), /etc/appliance (0750, appliance.env)
# - /var/lib/appliance/models (0700): the binary's models dir (model files stay outside the binary;
#   add one with `sudo -u appliance appliance model add FILE --data-dir /var/lib/appliance`)
# - the one-file binary to /usr/local/bin/appliance (default source: ../build/dist/appliance, or
#   ./appliance next to this script in a release bundle)
# - `appliance init` as that user when the data directory is not initialised; its output (the first
#   test-mode Authorization value and the metrics token) is printed once, here
# - /etc/systemd/system/appliance.service (hardened), enabled and started
# - TLS: the self-signed certificate that `init` made, unless --tls-cert/--tls-key (your own; copied
#   to /etc/appliance/tls) or --no-tls (plain HTTP, e.g. behind a TLS-terminating proxy on loopback)
# - binds 127.0.0.1:8443 unless --host/--port say otherwise (D8: loopback by default)
#
# --dry-run prints every command that changes the system instead of running it.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
USER_NAME="appliance"
DATA_DIR="/var/lib/appliance"
MODELS_DIR="$DATA_DIR/models"  # the binary's default: <data dir>/models (docs/ai.md)
ETC_DIR="/etc/appliance"
ENV_FILE="$ETC_DIR/appliance.env"
BIN_PATH="/usr/local/bin/appliance"
UNIT_SRC="$HERE/appliance.service"
UNIT_DST="/etc/systemd/system/appliance.service"
DOC_DIR="/usr/local/share/doc/appliance"

binary=""
host="127.0.0.1"
port="8443"
tls="self-signed"
tls_cert=""
tls_key=""
start=1
dry=0
configured=0  # host, port or TLS given: (re)write appliance.env; otherwise an existing one is kept

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "install: $*" >&2; exit 2; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --binary) binary="$2"; shift 2 ;;
        --host) host="$2"; configured=1; shift 2 ;;
        --port) port="$2"; configured=1; shift 2 ;;
        --tls-cert) tls="own"; tls_cert="$2"; configured=1; shift 2 ;;
        --tls-key) tls="own"; tls_key="$2"; configured=1; shift 2 ;;
        --no-tls) tls="none"; configured=1; shift ;;
        --no-start) start=0; shift ;;
        --dry-run) dry=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

run() {
    if [[ $dry == 1 ]]; then
        printf '+'; printf ' %q' "$@"; printf '\n'
    else
        "$@"
    fi
}

# Write stdin to a file with an owner and mode (atomically: temp file, then rename).
put_file() {  # path mode owner:group
    local path="$1" mode="$2" owner="$3" content
    content="$(cat)"
    if [[ $dry == 1 ]]; then
        echo "+ write $path ($mode $owner):"
        printf '%s\n' "$content" | sed 's/^/    /'
        return
    fi
    local tmp
    tmp="$(mktemp "$path.XXXXXX")"
    printf '%s\n' "$content" >"$tmp"
    chmod "$mode" "$tmp"
    chown "$owner" "$tmp"
    mv -f "$tmp" "$path"
}

# -- checks --------------------------------------------------------------------------------------
if [[ -z "$binary" ]]; then
    for candidate in "$HERE/appliance" "$HERE/../build/dist/appliance"; do
        if [[ -f "$candidate" ]]; then binary="$candidate"; break; fi
    done
fi
[[ -n "$binary" && -f "$binary" ]] || die "no binary: build one with 'make binary' or pass --binary PATH"
[[ "$port" =~ ^[0-9]+$ ]] || die "--port must be a number"
if [[ "$tls" == own ]]; then
    [[ -f "$tls_cert" && -f "$tls_key" ]] || die "--tls-cert and --tls-key must both name existing files"
fi
if [[ $dry == 0 ]]; then
    [[ $EUID -eq 0 ]] || die "run as root (or try --dry-run)"
    command -v systemctl >/dev/null || die "systemd is required"
    "$binary" --version >/dev/null || die "$binary does not run on this machine"
fi

# -- user and directories ------------------------------------------------------------------------
if ! getent passwd "$USER_NAME" >/dev/null; then
    run useradd --system --user-group --home-dir "$DATA_DIR" --no-create-home \
        --shell /usr/sbin/nologin --comment "Coassemble appliance" "$USER_NAME"
fi
run install -d -m 0700 -o "$USER_NAME" -g "$USER_NAME" "$DATA_DIR"
run install -d -m 0700 -o "$USER_NAME" -g "$USER_NAME" "$MODELS_DIR"
run install -d -m 0750 -o root -g "$USER_NAME" "$ETC_DIR"
run install -d -m 0755 "$DOC_DIR"
[[ -f "$HERE/README.md" ]] && run install -m 0644 "$HERE/README.md" "$DOC_DIR/README.md"

# -- binary: replace atomically; keep the previous one for rollback -----------------------------
if [[ -f "$BIN_PATH" ]] && ! cmp -s "$binary" "$BIN_PATH"; then
    run cp -p "$BIN_PATH" "$BIN_PATH.prev"
fi
run install -m 0755 -o root -g root "$binary" "$BIN_PATH.new"
run mv -f "$BIN_PATH.new" "$BIN_PATH"

# -- first initialisation (prints the first key once) --------------------------------------------
if [[ -f "$DATA_DIR/keyring.json" ]]; then
    echo "install: $DATA_DIR is already initialised; keys are not shown again"
    echo "install: make a new one with: sudo -u $USER_NAME $BIN_PATH key create --data-dir $DATA_DIR --workspace 1 --mode test"
else
    echo "install: initialising $DATA_DIR (the values below are shown only once; store them now)"
    (cd / && run runuser -u "$USER_NAME" -- "$BIN_PATH" init --data-dir "$DATA_DIR")
fi

# -- configuration: host, port, TLS --------------------------------------------------------------
scheme="https"
case "$tls" in
    self-signed)
        cert_line="APPLIANCE_SERVER_TLS_CERT=$DATA_DIR/tls/self-signed.crt"
        key_line="APPLIANCE_SERVER_TLS_KEY=$DATA_DIR/tls/self-signed.key" ;;
    own)
        run install -d -m 0750 -o root -g "$USER_NAME" "$ETC_DIR/tls"
        run install -m 0644 -o root -g "$USER_NAME" "$tls_cert" "$ETC_DIR/tls/server.crt"
        run install -m 0640 -o root -g "$USER_NAME" "$tls_key" "$ETC_DIR/tls/server.key"
        cert_line="APPLIANCE_SERVER_TLS_CERT=$ETC_DIR/tls/server.crt"
        key_line="APPLIANCE_SERVER_TLS_KEY=$ETC_DIR/tls/server.key" ;;
    none)
        scheme="http"
        cert_line="APPLIANCE_SERVER_TLS_CERT="
        key_line="APPLIANCE_SERVER_TLS_KEY=" ;;
esac
if [[ -f "$ENV_FILE" && $configured == 0 ]]; then
    echo "install: keeping $ENV_FILE (give --host/--port/--tls-* to rewrite it)"
    # shellcheck disable=SC1090
    host="$(. "$ENV_FILE"; echo "${APPLIANCE_SERVER_HOST:-127.0.0.1}")"
    # shellcheck disable=SC1090
    port="$(. "$ENV_FILE"; echo "${APPLIANCE_SERVER_PORT:-8080}")"
    # shellcheck disable=SC1090
    if [[ -z "$(. "$ENV_FILE"; echo "${APPLIANCE_SERVER_TLS_CERT:-}")" ]]; then scheme="http"; tls="none"; fi
else
    put_file "$ENV_FILE" 0640 "root:$USER_NAME" <<EOF
# Written by installer/install.sh; read by appliance.service. Any APPLIANCE_* setting may go here
# (docs/configuration.md). For the CLI, export APPLIANCE_DATA_DIR or pass --data-dir.
# On-box AI models live in $MODELS_DIR (the default for this data directory; move them with
# [ai] models_dir in $DATA_DIR/appliance.toml, which the CLI reads too, rather than here).
APPLIANCE_DATA_DIR=$DATA_DIR
APPLIANCE_SERVER_HOST=$host
APPLIANCE_SERVER_PORT=$port
$cert_line
$key_line
EOF
fi

# -- service -------------------------------------------------------------------------------------
run install -m 0644 -o root -g root "$UNIT_SRC" "$UNIT_DST"
run systemctl daemon-reload
run systemctl enable appliance.service
if [[ $start == 1 ]]; then
    run systemctl restart appliance.service
fi

probe="$host"
[[ "$host" == "0.0.0.0" || "$host" == "::" || -z "$host" ]] && probe="127.0.0.1"
echo "install: done. Service: systemctl status appliance; logs: journalctl -u appliance"
echo "install: API $scheme://$probe:$port/v1/headless/courses   health $scheme://$probe:$port/health"
(cd / && run runuser -u "$USER_NAME" -- "$BIN_PATH" admin setup-link --data-dir "$DATA_DIR" --base-url "$scheme://$probe:$port")  # the console's first-run link, while no administrator exists
echo "install: on-box AI: put the model in $MODELS_DIR: sudo -u $USER_NAME $BIN_PATH model add FILE --data-dir $DATA_DIR"
echo "install:   (FILE readable by $USER_NAME; the default model is listed by 'model list'), then: systemctl restart appliance"
[[ "$tls" == self-signed ]] && echo "install: the certificate is self-signed ($DATA_DIR/tls/self-signed.crt); clients must trust it or use their own"
exit 0
