#!/usr/bin/env bash
# Micromance installer.
#
#   sudo ./install.sh         on a Raspberry Pi: Debian packages, I2C, the service user, a venv
#                             in /opt/micromance, /etc/micromance/config.toml, the service
#   ./install.sh --dev        desktop / CI: Debian packages for the tests, ./.venv, the package
#   ./install.sh --dry-run    print every change instead of making it (combine with the others)
#   sudo ./install.sh --uninstall [--purge]
#                             remove the service and /opt/micromance; config and state are
#                             kept unless --purge (which also removes the service user)
#   --force-pi                install the service on a machine that is not a Raspberry Pi
#
# Idempotent: a second run changes nothing. It never overwrites user config or state.
# For tests and images: DESTDIR=DIR prefixes every path written; APT_GET, DPKG_QUERY,
# SYSTEMCTL, GETENT, USERADD, USERMOD, USERDEL, GROUPADD and PYTHON3 replace those tools;
# MICROMANCE_SKIP_VENV=1 leaves out the venv and pip.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DRY_RUN=0
MODE=""
PURGE=0
FORCE_PI=0
ARGS=()

# Debian packages a desktop or CI machine needs to run the whole test suite.
DEV_APT_PACKAGES=(python3 python3-venv python3-pip mosquitto shellcheck systemd)
# Debian packages the unit needs on a Pi: lgpio for the pins (seen through
# --system-site-packages), I2C tools for i2cdetect, MQTT clients for checking a broker, a
# font, and iw for `micromance doctor`'s Wi-Fi check.
PI_APT_PACKAGES=(python3 python3-venv python3-lgpio i2c-tools mosquitto-clients
                 fonts-dejavu-core iw)

# Where things go on the Pi (each is prefixed with $DESTDIR).
PREFIX=/opt/micromance
VENV="$PREFIX/venv"
CONFIG_DIR=/etc/micromance
CONFIG_FILE="$CONFIG_DIR/config.toml"
STATE_DIR=/var/lib/micromance
UNIT_NAME=micromance.service
UNIT_FILE="/etc/systemd/system/$UNIT_NAME"
COMMAND_LINK=/usr/local/bin/micromance
SERVICE_USER=micromance
SERVICE_GROUPS=(gpio i2c)
MODEL_FILE="${MODEL_FILE:-/proc/device-tree/model}"

DESTDIR="${DESTDIR:-}"
DESTDIR="${DESTDIR%/}"
APT_GET="${APT_GET:-apt-get}"
DPKG_QUERY="${DPKG_QUERY:-dpkg-query}"
SYSTEMCTL="${SYSTEMCTL:-systemctl}"
GETENT="${GETENT:-getent}"
USERADD="${USERADD:-useradd}"
USERMOD="${USERMOD:-usermod}"
USERDEL="${USERDEL:-userdel}"
GROUPADD="${GROUPADD:-groupadd}"
PYTHON3="${PYTHON3:-python3}"
BOOT_CONFIG="$HERE/firmware_config/boot-config.sh"

# What this run did that decides the closing advice.
REBOOT_NEEDED=0
SERVICE_NEEDS_RESTART=0

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

say() { printf 'micromance-install: %s\n' "$*"; }
die() { printf 'micromance-install: error: %s\n' "$*" >&2; exit 1; }

# Run a command that changes the system, or only print it with --dry-run.
change() {
  if [ "$DRY_RUN" -eq 1 ]; then
    printf 'would run: %s\n' "$*"
  else
    "$@"
  fi
}

as_root() {
  # With DESTDIR the tools are stand-ins (tests, images): no sudo for them.
  if [ "$(id -u)" -eq 0 ] || [ -n "$DESTDIR" ]; then
    change "$@"
  elif command -v sudo >/dev/null 2>&1; then
    change sudo "$@"
  else
    die "need root for: $* (run as root or install sudo)"
  fi
}

missing_apt_packages() {
  local package
  for package in "$@"; do
    # shellcheck disable=SC2016  # ${Status} is dpkg-query's format, not a shell variable
    if ! "$DPKG_QUERY" -W -f='${Status}' "$package" 2>/dev/null \
        | grep -q "install ok installed"; then
      printf '%s\n' "$package"
    fi
  done
}

install_apt_packages() {
  local missing
  mapfile -t missing < <(missing_apt_packages "$@")
  if [ "${#missing[@]}" -eq 0 ]; then
    say "Debian packages already installed: $*"
    return
  fi
  command -v "$APT_GET" >/dev/null 2>&1 || die "apt-get not found: install ${missing[*]} by hand"
  say "installing Debian packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive "$APT_GET" update -qq
  as_root env DEBIAN_FRONTEND=noninteractive "$APT_GET" install -y -qq --no-install-recommends \
    "${missing[@]}"
}

# --- desktop / CI -------------------------------------------------------------------------

# A venv with the package installed editable; pip is only run when pyproject.toml changed.
setup_dev_venv() {
  local venv="$HERE/.venv" stamp="$HERE/.venv/.micromance-installed" digest
  if [ ! -x "$venv/bin/python" ]; then
    say "creating the virtual environment $venv"
    change python3 -m venv "$venv"
  fi
  digest="$(sha256sum "$HERE/pyproject.toml" | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ] \
      && "$venv/bin/python" -c "import micromance" 2>/dev/null; then
    say "the virtual environment is up to date"
    return
  fi
  say "installing micromance and its test tools into $venv"
  change "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  change "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "${HERE}[test]"
  if [ "$DRY_RUN" -eq 0 ]; then
    printf '%s\n' "$digest" > "$stamp"
  fi
}

install_dev() {
  install_apt_packages "${DEV_APT_PACKAGES[@]}"
  setup_dev_venv
  say "ready: $HERE/.venv/bin/micromance (tests: $HERE/.venv/bin/python -m pytest)"
}

# --- helpers for the Pi -------------------------------------------------------------------

is_raspberry_pi() {
  [ -r "$MODEL_FILE" ] && tr -d '\0' < "$MODEL_FILE" | grep -q "Raspberry Pi"
}

# Refuse to turn a laptop into a kitchen unit by accident.
require_pi() {
  if is_raspberry_pi || [ "$FORCE_PI" -eq 1 ] || [ -n "$DESTDIR" ]; then
    return
  fi
  die "this is not a Raspberry Pi (no \"Raspberry Pi\" in $MODEL_FILE): for a development setup run ./install.sh --dev; to install the service here anyway add --force-pi"
}

require_root() {
  if [ "$DRY_RUN" -eq 0 ] && [ -z "$DESTDIR" ] && [ "$(id -u)" -ne 0 ]; then
    die "this needs root: sudo $0 ${ARGS[*]}"
  fi
}

# Write content from stdin to a file, or print what would be written.
write_file() {
  local path="$1" mode="$2" content
  content="$(cat)"
  if [ "$DRY_RUN" -eq 1 ]; then
    printf 'would write: %s (mode %s)\n' "$path" "$mode"
    return
  fi
  mkdir -p "$(dirname "$path")"
  printf '%s\n' "$content" > "$path"
  chmod "$mode" "$path"
}

# What pip needs to build the package (pyproject.toml names README.md as the readme).
PACKAGE_SOURCES=(pyproject.toml README.md device/micromance)

# Fingerprint of what pip installs: the package's files, not caches or build leftovers.
source_digest() {
  (cd "$HERE" && find "${PACKAGE_SOURCES[@]}" -type f ! -path '*/__pycache__/*' \
      ! -name '*.pyc' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) \
    | sha256sum | cut -d' ' -f1
}

# pip install from a clean copy: building in the checkout would leave build/ behind, and
# setuptools would put files deleted since the last build into the next wheel.
pip_install_from_copy() {
  local python="$1" copy status=0
  if [ "$DRY_RUN" -eq 1 ]; then
    printf 'would run: %s -m pip install %s (from a clean copy)\n' "$python" "$HERE"
    return
  fi
  copy="$(mktemp -d)"
  tar -C "$HERE" --exclude=__pycache__ --exclude='*.pyc' -cf - "${PACKAGE_SOURCES[@]}" \
    | tar -C "$copy" -xf -
  "$python" -m pip install --quiet --disable-pip-version-check "$copy" || status=$?
  rm -rf "$copy"
  [ "$status" -eq 0 ] || die "pip could not install micromance (exit $status): see above"
}

user_exists() { "$GETENT" passwd "$1" >/dev/null 2>&1; }
group_exists() { "$GETENT" group "$1" >/dev/null 2>&1; }

user_in_group() {
  local members
  members="$("$GETENT" group "$2" 2>/dev/null | cut -d: -f4)"
  printf '%s\n' "${members//,/$'\n'}" | grep -qx "$1"
}

unit_enabled() { "$SYSTEMCTL" is-enabled --quiet "$UNIT_NAME" 2>/dev/null; }
unit_active() { "$SYSTEMCTL" is-active --quiet "$UNIT_NAME" 2>/dev/null; }

# --- installing on a Pi -------------------------------------------------------------------

enable_i2c() {
  local dry=() status=0
  [ "$DRY_RUN" -eq 1 ] && dry=(--dry-run)
  DESTDIR="$DESTDIR" "$BOOT_CONFIG" status >/dev/null || status=$?
  case "$status" in
    0) say "I2C is already set up in the boot config"
       # Set up but not live yet: the reboot after an earlier run is still to come.
       if [ ! -e "$DESTDIR/dev/i2c-1" ]; then
         REBOOT_NEEDED=1
       fi ;;
    3) DESTDIR="$DESTDIR" "$BOOT_CONFIG" apply "${dry[@]}"
       REBOOT_NEEDED=1 ;;
    4) say "warning: no /boot/firmware/config.txt or /boot/config.txt: enable I2C yourself (sudo raspi-config nonint do_i2c 0) and reboot" ;;
    *) die "could not read the boot config (boot-config.sh status exited $status)" ;;
  esac
}

create_service_user() {
  local group
  if user_exists "$SERVICE_USER"; then
    say "service user $SERVICE_USER exists"
  else
    say "creating the system user $SERVICE_USER"
    change "$USERADD" --system --user-group --home-dir "$STATE_DIR" --no-create-home \
      --shell /usr/sbin/nologin --comment "Micromance unit" "$SERVICE_USER"
  fi
  for group in "${SERVICE_GROUPS[@]}"; do
    if ! group_exists "$group"; then
      change "$GROUPADD" --system "$group"
    fi
    if ! user_in_group "$SERVICE_USER" "$group"; then
      say "adding $SERVICE_USER to the $group group"
      change "$USERMOD" --append --groups "$group" "$SERVICE_USER"
    fi
  done
}

# /opt/micromance/venv sees apt's lgpio (--system-site-packages); the package comes from this
# checkout. pip only runs when the checkout changed since the last install.
install_package() {
  local venv="$DESTDIR$VENV" stamp digest
  stamp="$venv/.micromance-source"
  if [ "${MICROMANCE_SKIP_VENV:-0}" = "1" ]; then
    say "skipping the virtual environment (MICROMANCE_SKIP_VENV=1)"
    return
  fi
  if [ ! -x "$venv/bin/python" ] \
      || ! grep -q '^include-system-site-packages = true' "$venv/pyvenv.cfg" 2>/dev/null; then
    say "creating the virtual environment $venv (with system site packages, for lgpio)"
    change "$PYTHON3" -m venv --system-site-packages "$venv"
  fi
  digest="$(source_digest)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ] \
      && "$venv/bin/python" -c "import micromance" 2>/dev/null; then
    say "micromance in $venv is up to date"
    return
  fi
  say "installing micromance from $HERE into $venv"
  pip_install_from_copy "$venv/bin/python"
  printf '%s\n' "$digest" | write_file "$stamp" 0644
  SERVICE_NEEDS_RESTART=1
}

link_command() {
  local link="$DESTDIR$COMMAND_LINK"
  if [ "${MICROMANCE_SKIP_VENV:-0}" = "1" ]; then
    return
  fi
  if [ "$(readlink "$link" 2>/dev/null)" = "$VENV/bin/micromance" ]; then
    return
  fi
  say "linking $COMMAND_LINK to $VENV/bin/micromance"
  change mkdir -p "$(dirname "$link")"
  change ln -sfn "$VENV/bin/micromance" "$link"
}

# The example config, once: an existing /etc/micromance/config.toml is never touched.
install_config() {
  local config="$DESTDIR$CONFIG_FILE"
  if [ -e "$config" ]; then
    say "keeping your config $CONFIG_FILE"
    return
  fi
  say "installing the example config as $CONFIG_FILE (edit it: name, broker)"
  change install -D -m 0644 "$HERE/firmware_config/micromance.toml" "$config"
}

install_unit() {
  local unit="$DESTDIR$UNIT_FILE"
  if cmp -s "$HERE/systemd/$UNIT_NAME" "$unit"; then
    say "the service $UNIT_NAME is up to date"
  else
    say "installing the service $UNIT_FILE"
    change install -D -m 0644 "$HERE/systemd/$UNIT_NAME" "$unit"
    change "$SYSTEMCTL" daemon-reload
    SERVICE_NEEDS_RESTART=1
  fi
  if ! unit_enabled; then
    change "$SYSTEMCTL" enable "$UNIT_NAME"
  fi
}

start_unit() {
  if [ "$REBOOT_NEEDED" -eq 1 ]; then
    say "the service starts after the reboot (I2C is switched on at boot)"
  elif ! unit_active; then
    say "starting $UNIT_NAME"
    change "$SYSTEMCTL" start "$UNIT_NAME"
  elif [ "$SERVICE_NEEDS_RESTART" -eq 1 ]; then
    say "restarting $UNIT_NAME (new version)"
    change "$SYSTEMCTL" restart "$UNIT_NAME"
  else
    say "$UNIT_NAME is running"
  fi
}

install_pi() {
  require_pi
  require_root
  install_apt_packages "${PI_APT_PACKAGES[@]}"
  enable_i2c
  create_service_user
  install_package
  link_command
  install_config
  install_unit
  start_unit
  if [ "$DRY_RUN" -eq 1 ]; then
    say "dry run: nothing was changed"
  elif [ "$REBOOT_NEEDED" -eq 1 ]; then
    say "done. Reboot now (sudo reboot); afterwards check the unit with: sudo micromance doctor"
  else
    say "done. Check the unit with: sudo micromance doctor"
  fi
}

# --- uninstalling -------------------------------------------------------------------------

remove_path() {
  local path="$1"
  if [ -e "$path" ] || [ -L "$path" ]; then
    say "removing $path"
    change rm -rf "$path"
  fi
}

uninstall() {
  local dry=()
  [ "$DRY_RUN" -eq 1 ] && dry=(--dry-run)
  require_root
  if unit_enabled || unit_active; then
    change "$SYSTEMCTL" disable --now "$UNIT_NAME"
  fi
  if [ -e "$DESTDIR$UNIT_FILE" ]; then
    remove_path "$DESTDIR$UNIT_FILE"
    change "$SYSTEMCTL" daemon-reload
  fi
  if [ "$(readlink "$DESTDIR$COMMAND_LINK" 2>/dev/null)" = "$VENV/bin/micromance" ]; then
    remove_path "$DESTDIR$COMMAND_LINK"
  fi
  remove_path "$DESTDIR$PREFIX"
  DESTDIR="$DESTDIR" "$BOOT_CONFIG" undo "${dry[@]}" || say "warning: could not undo the boot config: see above"
  if [ "$PURGE" -eq 1 ]; then
    remove_path "$DESTDIR$CONFIG_DIR"
    remove_path "$DESTDIR$STATE_DIR"
    if user_exists "$SERVICE_USER"; then
      say "removing the system user $SERVICE_USER"
      change "$USERDEL" "$SERVICE_USER"
    fi
    say "done: micromance, its config, its state and its user are gone"
  else
    say "done: kept your config ($CONFIG_DIR) and state ($STATE_DIR, with the pairing); --uninstall --purge deletes them"
  fi
  say "the Debian packages stay installed (other programs may use them)"
}

main() {
  ARGS=("$@")
  while [ $# -gt 0 ]; do
    case "$1" in
      --dev) MODE=dev ;;
      --uninstall) MODE=uninstall ;;
      --purge) PURGE=1 ;;
      --force-pi) FORCE_PI=1 ;;
      --dry-run) DRY_RUN=1 ;;
      -h|--help) usage; exit 0 ;;
      *) usage >&2; die "unknown option: $1" ;;
    esac
    shift
  done
  if [ "$PURGE" -eq 1 ] && [ "$MODE" != uninstall ]; then
    die "--purge only goes with --uninstall"
  fi
  case "$MODE" in
    dev) install_dev ;;
    uninstall) uninstall ;;
    *) install_pi ;;
  esac
}

main "$@"
