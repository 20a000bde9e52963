#!/usr/bin/env bash
# Micromance installer.
#
#   sudo ./install.sh         on a Raspberry Pi: Debian packages, I2C, the service user, a venv
#                             in /opt/micromance, /etc/micromance/config.toml, the service
#   sudo ./install.sh --wifi-portal
#                             the same, plus comitup: without a known Wi-Fi the unit opens its
#                             own hotspot (micromance-<4 digits>) to be given one from a phone
#   ./install.sh --dev        desktop / CI: Debian packages for the tests (Chromium for the
#                             browser tests too), ./.venv, the package
#   ./install.sh --dry-run    print every change instead of making it (combine with the others)
#   sudo ./install.sh --uninstall [--purge]
#                             remove the service and /opt/micromance; config and state are
#                             kept unless --purge (which also removes the service user)
#   --force-pi                install the service on a machine that is not a Raspberry Pi
#   ./install.sh --image-files DIR
#                             the first-boot installer, for the boot partition of a freshly
#                             written Raspberry Pi OS card: DIR gets micromance/ (this release
#                             and the scripts) and vendor-data (cloud-init's hook); DIR may be
#                             the card's boot partition itself (then a Bookworm firstrun.sh is
#                             hooked too). See README, "From a blank SD card".
#   ./install.sh --release-archive OUT
#                             OUT/micromance-<version>.tar.gz: the package sources, the
#                             installer files and the built wheel (git archive of HEAD, or of
#                             the tag named by --ref TAG)
#
# Idempotent: a second run changes nothing. It never overwrites user config or state.
# For tests and images: DESTDIR=DIR prefixes every path written; APT_GET, DPKG_QUERY,
# SYSTEMCTL, GETENT, USERADD, USERMOD, USERDEL, GROUPADD, CHGRP, STAT and PYTHON3 replace those
# tools; MICROMANCE_SKIP_VENV=1 leaves out the venv and pip. MICROMANCE_PROGRESS=CMD is run as
# `CMD STEP TOTAL WHAT` as each step of a unit install starts and `CMD done reboot|ready` at the
# end (the first-boot installer draws it); MICROMANCE_START_NO_BLOCK=1 starts the services with
# --no-block (a oneshot ordered before them must not wait for them).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DRY_RUN=0
MODE=""
PURGE=0
FORCE_PI=0
WIFI_PORTAL=0
IMAGE_DIR=""
ARCHIVE_DIR=""
ARCHIVE_REF=HEAD
ARGS=()

# Debian packages a desktop or CI machine needs to run the whole test suite: the browser
# tests drive Debian's Chromium through Debian's chromedriver (no driver download), and the
# page screenshots they compare need one known font; cloud-init checks the first-boot
# installer's cloud-init file (`cloud-init schema`).
DEV_APT_PACKAGES=(python3 python3-venv python3-pip mosquitto shellcheck systemd
                  chromium chromium-driver fonts-dejavu-core cloud-init)
# Debian packages the unit needs on a Pi: lgpio for the pins (seen through
# --system-site-packages), I2C tools for i2cdetect, MQTT clients for checking a broker, a
# font, and iw for `micromance doctor`'s Wi-Fi check.
PI_APT_PACKAGES=(python3 python3-venv python3-lgpio i2c-tools mosquitto-clients
                 fonts-dejavu-core iw)
# --wifi-portal: comitup (it brings NetworkManager, Raspberry Pi OS's default since Bookworm).
WIFI_PORTAL_APT_PACKAGES=(comitup)

# Where things go on the Pi (each is prefixed with $DESTDIR).
PREFIX=/opt/micromance
VENV="$PREFIX/venv"
CONFIG_DIR=/etc/micromance
CONFIG_FILE="$CONFIG_DIR/config.toml"
STATE_DIR=/var/lib/micromance
UNIT_NAME=micromance.service
UNIT_DIR=/etc/systemd/system
# The unit's web page (micromance web): systemd listens on its socket and starts the service
# for the first visitor; the service exits when nobody has looked for a while.
WEB_SOCKET=micromance-web.socket
WEB_SERVICE=micromance-web.service
COMITUP_CONFIG=/etc/comitup.conf
COMITUP_KEPT="$COMITUP_CONFIG.micromance-orig"
# Marks a /etc/comitup.conf as ours (the template's first line says it).
COMITUP_MARK="install.sh --wifi-portal"
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
CHGRP="${CHGRP:-chgrp}"
STAT="${STAT:-stat}"
PYTHON3="${PYTHON3:-python3}"
BOOT_CONFIG="$HERE/firmware_config/boot-config.sh"
FIRSTBOOT_FILES="$HERE/firmware_config/firstboot"
PROGRESS="${MICROMANCE_PROGRESS:-}"
START_NO_BLOCK="${MICROMANCE_START_NO_BLOCK:-0}"

# What this run did that decides the closing advice.
REBOOT_NEEDED=0
SERVICE_NEEDS_RESTART=0
WEB_NEEDS_RESTART=0

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

say() { printf 'micromance-install: %s\n' "$*"; }
die() { printf 'micromance-install: error: %s\n' "$*" >&2; exit 1; }

# Tell MICROMANCE_PROGRESS (if set) which step starts; it only watches, so its failure is
# not ours.
progress() {
  if [ "$1" = "done" ]; then
    say "step done $2"
  else
    say "step $1/$2: $3"
  fi
  if [ -n "$PROGRESS" ]; then
    "$PROGRESS" "$@" || true
  fi
}

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
    if [ -n "$(shipped_wheel)" ]; then
      printf 'would run: %s -m pip install %s\n' "$python" "$(shipped_wheel)"
    else
      printf 'would run: %s -m pip install %s (from a clean copy)\n' "$python" "$HERE"
    fi
    return
  fi
  local pip=("$python" -m pip install --quiet --disable-pip-version-check)
  # A release archive brings wheels: ours (no build step, so no setuptools download) and any
  # the builder added for offline installs.
  if [ -d "$HERE/wheels" ]; then
    pip+=(--find-links "$HERE/wheels")
  fi
  local wheel
  wheel="$(shipped_wheel)"
  if [ -n "$wheel" ]; then
    "${pip[@]}" "$wheel" || status=$?
    [ "$status" -eq 0 ] || die "pip could not install $wheel (exit $status): see above"
    return
  fi
  copy="$(mktemp -d)"
  tar -C "$HERE" --exclude=__pycache__ --exclude='*.pyc' -cf - "${PACKAGE_SOURCES[@]}" \
    | tar -C "$copy" -xf -
  "${pip[@]}" "$copy" || status=$?
  rm -rf "$copy"
  [ "$status" -eq 0 ] || die "pip could not install micromance (exit $status): see above"
}

# The wheel a release archive ships for this version ("" in a checkout).
shipped_wheel() {
  local path
  path="$HERE/wheels/micromance-$(package_version)-py3-none-any.whl"
  if [ -f "$path" ]; then
    printf '%s\n' "$path"
  fi
}

user_exists() { "$GETENT" passwd "$1" >/dev/null 2>&1; }
group_exists() { "$GETENT" group "$1" >/dev/null 2>&1; }

user_in_group() {
  local members
  members="$("$GETENT" group "$2" 2>/dev/null | cut -d: -f4)"
  printf '%s\n' "${members//,/$'\n'}" | grep -qx "$1"
}

unit_enabled() { "$SYSTEMCTL" is-enabled --quiet "${1:-$UNIT_NAME}" 2>/dev/null; }
unit_active() { "$SYSTEMCTL" is-active --quiet "${1:-$UNIT_NAME}" 2>/dev/null; }

# systemctl start/restart/stop UNIT, queued only with MICROMANCE_START_NO_BLOCK=1.
unit_job() {
  if [ "$START_NO_BLOCK" = "1" ]; then
    change "$SYSTEMCTL" "$1" --no-block "$2"
  else
    change "$SYSTEMCTL" "$1" "$2"
  fi
}

# The systemd units this checkout ships: the daemon, and the web page's socket and service.
shipped_units() {
  local path
  for path in "$HERE"/systemd/micromance*.service "$HERE"/systemd/micromance*.socket; do
    [ -e "$path" ] && basename "$path"
  done
  return 0
}

ships_unit() { [ -e "$HERE/systemd/$1" ]; }

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
  WEB_NEEDS_RESTART=1
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

# The example config, once: an existing /etc/micromance/config.toml is never touched (only
# its group and mode, below).
install_config() {
  local config="$DESTDIR$CONFIG_FILE"
  if [ -e "$config" ]; then
    say "keeping your config $CONFIG_FILE"
  else
    say "installing the example config as $CONFIG_FILE (edit it: name, broker)"
    change install -D -m 0644 "$HERE/firmware_config/micromance.toml" "$config"
  fi
  # The unit's web page saves settings as the service user: it writes the new config.toml
  # beside the old one (after a dated copy) and renames it over, and keeps broker passwords
  # beside it, so it must write the directory as well as the file. Root still owns both;
  # group micromance may write them, everyone else only read (no secret is in config.toml:
  # passwords live in their own 0640 files). The directory's setgid bit gives the files the
  # page creates the same group, so the daemon (in that group too) can read them.
  share_with_service_group "$DESTDIR$CONFIG_DIR" 2775
  share_with_service_group "$config" 664
}

# Group $SERVICE_USER and ``mode`` (as stat %a prints it) for ``path``, changed only if needed.
share_with_service_group() {
  local path="$1" mode="$2" group="" current=""
  if [ -e "$path" ]; then
    group="$("$STAT" -c %G "$path")"
    current="$("$STAT" -c %a "$path")"
  fi
  if [ "$group" != "$SERVICE_USER" ] || [ "$current" != "$mode" ]; then
    say "letting group $SERVICE_USER write ${path#"$DESTDIR"} (the web page saves settings)"
    [ "$group" = "$SERVICE_USER" ] || change "$CHGRP" "$SERVICE_USER" "$path"
    [ "$current" = "$mode" ] || change chmod "$mode" "$path"
  fi
}

# Every unit this checkout ships, each only when it changed; one daemon-reload for them all.
# Enabled: the daemon and the web page's socket (its service starts on the first visit).
install_units() {
  local name target changed=0
  while IFS= read -r name; do
    target="$DESTDIR$UNIT_DIR/$name"
    if cmp -s "$HERE/systemd/$name" "$target"; then
      say "the unit $name is up to date"
      continue
    fi
    say "installing the unit $UNIT_DIR/$name"
    change install -D -m 0644 "$HERE/systemd/$name" "$target"
    changed=1
    case "$name" in
      "$UNIT_NAME") SERVICE_NEEDS_RESTART=1 ;;
      *) WEB_NEEDS_RESTART=1 ;;
    esac
  done < <(shipped_units)
  if [ "$changed" -eq 1 ]; then
    change "$SYSTEMCTL" daemon-reload
  fi
  for name in "$UNIT_NAME" "$WEB_SOCKET"; do
    if ships_unit "$name" && ! unit_enabled "$name"; then
      change "$SYSTEMCTL" enable "$name"
    fi
  done
}

start_units() {
  if [ "$REBOOT_NEEDED" -eq 1 ]; then
    say "the service starts after the reboot (I2C is switched on at boot)"
    return
  fi
  if ! unit_active; then
    say "starting $UNIT_NAME"
    unit_job start "$UNIT_NAME"
  elif [ "$SERVICE_NEEDS_RESTART" -eq 1 ]; then
    say "restarting $UNIT_NAME (new version)"
    unit_job restart "$UNIT_NAME"
  else
    say "$UNIT_NAME is running"
  fi
  ships_unit "$WEB_SOCKET" || return 0
  # A page being served by the old version ends now; the next visit starts the new one
  # (systemd refuses to restart a socket whose service is running, hence the order).
  if [ "$WEB_NEEDS_RESTART" -eq 1 ] && unit_active "$WEB_SERVICE"; then
    unit_job stop "$WEB_SERVICE"
  fi
  if ! unit_active "$WEB_SOCKET"; then
    say "starting $WEB_SOCKET (the unit's web page)"
    unit_job start "$WEB_SOCKET"
  elif [ "$WEB_NEEDS_RESTART" -eq 1 ]; then
    unit_job restart "$WEB_SOCKET"
  fi
}

# --- --wifi-portal: comitup ---------------------------------------------------------------

# A comitup.conf with a setting of its own (comitup's shipped file is all comments).
has_settings() { grep -Eq '^[[:space:]]*[A-Za-z_]+[[:space:]]*[:=]' "$1"; }

# comitup, and its config from firmware_config/comitup.conf: the hotspot micromance-<nnnn>,
# and the unit's page once on Wi-Fi. comitup's own file is kept aside (--uninstall puts it
# back); a comitup.conf someone edited is left alone, with what to add to it.
install_wifi_portal() {
  local template="$HERE/firmware_config/comitup.conf" target="$DESTDIR$COMITUP_CONFIG"
  install_apt_packages "${WIFI_PORTAL_APT_PACKAGES[@]}"
  if cmp -s "$template" "$target"; then
    say "comitup's config $COMITUP_CONFIG is up to date"
    return
  fi
  if [ -e "$target" ] && ! grep -qF "$COMITUP_MARK" "$target"; then
    if has_settings "$target"; then
      say "warning: keeping your $COMITUP_CONFIG (it has settings of its own): for the unit's hotspot set 'ap_name: micromance-<nnnn>' and 'web_service: $WEB_SOCKET' in it yourself"
      return
    fi
    if [ ! -e "$DESTDIR$COMITUP_KEPT" ]; then
      say "keeping comitup's own $COMITUP_CONFIG as $COMITUP_KEPT"
      change cp -p "$target" "$DESTDIR$COMITUP_KEPT"
    fi
  fi
  say "writing $COMITUP_CONFIG: without a known Wi-Fi the unit opens the hotspot micromance-<4 digits>"
  change install -D -m 0644 "$template" "$target"
  # comitup reads its config when it starts; restarting it now could drop the Wi-Fi this
  # very shell may be using, so the new settings wait for the reboot.
  REBOOT_NEEDED=1
}

remove_wifi_portal() {
  local target="$DESTDIR$COMITUP_CONFIG"
  if [ -e "$target" ] && grep -qF "$COMITUP_MARK" "$target"; then
    if [ -e "$DESTDIR$COMITUP_KEPT" ]; then
      say "putting comitup's own $COMITUP_CONFIG back"
      change mv "$DESTDIR$COMITUP_KEPT" "$target"
    else
      remove_path "$target"
    fi
    say "comitup stays installed (sudo apt-get remove comitup if the unit should not open a hotspot)"
  fi
}

install_pi() {
  local total=5
  require_pi
  require_root
  [ "$WIFI_PORTAL" -eq 1 ] && total=6
  progress 1 "$total" "the Debian packages"
  install_apt_packages "${PI_APT_PACKAGES[@]}"
  progress 2 "$total" "I2C and the service user"
  enable_i2c
  create_service_user
  progress 3 "$total" "the Python packages"
  install_package
  link_command
  progress 4 "$total" "the config and the services"
  install_config
  install_units
  if [ "$WIFI_PORTAL" -eq 1 ]; then
    progress 5 "$total" "the Wi-Fi hotspot (comitup)"
    install_wifi_portal
  fi
  progress "$total" "$total" "starting the unit"
  start_units
  if [ "$REBOOT_NEEDED" -eq 1 ]; then
    progress "done" reboot
  else
    progress "done" ready
  fi
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
  local name removed=0
  require_root
  # The socket first: it would start the page's service again.
  for name in "$WEB_SOCKET" "$WEB_SERVICE" "$UNIT_NAME"; do
    if unit_enabled "$name" || unit_active "$name"; then
      change "$SYSTEMCTL" disable --now "$name"
    fi
  done
  for name in "$UNIT_NAME" "$WEB_SOCKET" "$WEB_SERVICE"; do
    if [ -e "$DESTDIR$UNIT_DIR/$name" ]; then
      remove_path "$DESTDIR$UNIT_DIR/$name"
      removed=1
    fi
  done
  if [ "$removed" -eq 1 ]; then
    change "$SYSTEMCTL" daemon-reload
  fi
  remove_wifi_portal
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

# --- first boot from the SD card ------------------------------------------------------------

# The package version (pyproject.toml of this copy).
package_version() {
  sed -n 's/^version = "\(.*\)"$/\1/p' "$HERE/pyproject.toml"
}

# What install.sh needs to install a unit, and the wheels of a release archive.
INSTALLER_FILES=(install.sh firmware_config systemd "${PACKAGE_SOURCES[@]}")

# DIR/micromance/: this copy of Micromance as micromance-<version>.tar.gz, the first-boot
# script and its service; DIR/vendor-data: cloud-init's hook. When DIR is a card's boot
# partition (it has cmdline.txt) and Imager wrote a firstrun.sh (Bookworm), that script
# gets one line that enables the installer. Nothing of the person's own is replaced.
write_image_files() {
  local dir="$IMAGE_DIR" card version name path files=()
  version="$(package_version)"
  name="micromance-$version"
  card="$dir/micromance"
  [ -d "$dir" ] || die "--image-files: $dir is not a folder (make it, or give the card's boot partition)"
  if [ "$DRY_RUN" -eq 1 ]; then
    say "would write $card/ ($name.tar.gz, firstboot.sh, micromance-firstboot.service) and $dir/vendor-data"
    return
  fi
  mkdir -p "$card"
  rm -f "$card"/micromance-*.tar.gz
  for path in "${INSTALLER_FILES[@]}" wheels; do
    [ -e "$HERE/$path" ] && files+=("$path")
  done
  # FAT has no owners and few modes: a tarball keeps install.sh executable.
  tar -C "$HERE" --exclude=__pycache__ --exclude='*.pyc' --transform "s,^,$name/," \
    -czf "$card/$name.tar.gz" "${files[@]}"
  install -m 0755 "$FIRSTBOOT_FILES/firstboot.sh" "$card/firstboot.sh"
  install -m 0644 "$FIRSTBOOT_FILES/micromance-firstboot.service" \
    "$card/micromance-firstboot.service"
  [ -e "$card/firstboot.conf" ] || printf '%s\n' \
    "# wifi_portal=no leaves out the hotspot for setting the Wi-Fi from a phone (comitup)" \
    "wifi_portal=yes" > "$card/firstboot.conf"
  say "wrote $card/ ($name.tar.gz, firstboot.sh, micromance-firstboot.service, firstboot.conf)"
  write_vendor_data "$dir"
  if [ -f "$dir/cmdline.txt" ]; then
    hook_firstrun "$dir"
  fi
  say "done: copy everything in $dir onto the card's boot partition (README, \"From a blank SD card\")"
}

VENDOR_MARK="micromance first-boot installer"

write_vendor_data() {
  local target="$1/vendor-data"
  if [ -e "$target" ] && ! grep -qF "$VENDOR_MARK" "$target"; then
    say "warning: keeping the vendor-data already in $1: add the bootcmd line of $FIRSTBOOT_FILES/vendor-data to it yourself"
    return
  fi
  install -m 0644 "$FIRSTBOOT_FILES/vendor-data" "$target"
  say "wrote $target (cloud-init: Raspberry Pi OS Trixie and later)"
}

# Imager's firstrun.sh (Raspberry Pi OS Bookworm) ends by deleting itself; our line goes
# before that, so it runs once, with the rest of the person's settings.
hook_firstrun() {
  local firstrun="$1/firstrun.sh" line
  # shellcheck disable=SC2016  # $0 is firstrun.sh's, at first boot
  line='bash "$(dirname "$0")/micromance/firstboot.sh" enable || true  # micromance'
  if [ ! -f "$firstrun" ]; then
    if [ ! -f "$1/user-data" ]; then
      say "warning: this card has neither cloud-init's user-data nor Imager's firstrun.sh: write it with Raspberry Pi Imager and set a user and the Wi-Fi there"
    fi
    return
  fi
  if grep -qF "micromance/firstboot.sh" "$firstrun"; then
    say "$firstrun already enables the installer"
    return
  fi
  awk -v hook="$line" '
    !done && /^rm -f \/boot\/firstrun\.sh/ { print hook; done = 1 }
    !done && /^exit 0/ { print hook; done = 1 }
    { print }
    END { if (!done) print hook }' "$firstrun" > "$firstrun.micromance-new"
  cat "$firstrun.micromance-new" > "$firstrun"
  rm -f "$firstrun.micromance-new"
  say "added one line to $firstrun (Raspberry Pi Imager's first-boot script, Bookworm)"
}

# OUT/micromance-<version>.tar.gz: git archive of ARCHIVE_REF with the wheel built from it.
make_release_archive() {
  local out="$ARCHIVE_DIR" work version name status=0
  command -v git >/dev/null 2>&1 || die "--release-archive needs git"
  git -C "$HERE" rev-parse --verify --quiet "$ARCHIVE_REF^{commit}" >/dev/null \
    || die "--release-archive: $ARCHIVE_REF is not a commit or tag of $HERE"
  version="$(git -C "$HERE" show "$ARCHIVE_REF:pyproject.toml" \
               | sed -n 's/^version = "\(.*\)"$/\1/p')"
  name="micromance-$version"
  if [ "$DRY_RUN" -eq 1 ]; then
    say "would write $out/$name.tar.gz (git archive $ARCHIVE_REF and its wheel)"
    return
  fi
  mkdir -p "$out"
  work="$(mktemp -d)"
  git -C "$HERE" archive --format=tar --prefix="$name/" "$ARCHIVE_REF" | tar -C "$work" -xf -
  "$PYTHON3" -m pip wheel --quiet --disable-pip-version-check --no-deps \
    -w "$work/$name/wheels" "$work/$name" || status=$?
  rm -rf "$work/$name/build" "$work/$name"/device/*.egg-info
  if [ "$status" -ne 0 ]; then
    rm -rf "$work"
    die "pip could not build the wheel (exit $status): see above"
  fi
  tar -C "$work" -czf "$out/$name.tar.gz" "$name"
  rm -rf "$work"
  say "wrote $out/$name.tar.gz ($(du -k "$out/$name.tar.gz" | cut -f1) KiB): unpack it and run $name/install.sh --image-files DIR"
}

main() {
  ARGS=("$@")
  while [ $# -gt 0 ]; do
    case "$1" in
      --dev) MODE=dev ;;
      --uninstall) MODE=uninstall ;;
      --purge) PURGE=1 ;;
      --force-pi) FORCE_PI=1 ;;
      --wifi-portal) WIFI_PORTAL=1 ;;
      --dry-run) DRY_RUN=1 ;;
      --image-files|--release-archive)
        [ $# -ge 2 ] || die "$1 needs a folder"
        if [ "$1" = --image-files ]; then IMAGE_DIR="$2"; MODE=image; else ARCHIVE_DIR="$2"; MODE=archive; fi
        shift ;;
      --ref) [ $# -ge 2 ] || die "--ref needs a tag or commit"; ARCHIVE_REF="$2"; shift ;;
      -h|--help) usage; exit 0 ;;
      *) usage >&2; die "unknown option: $1" ;;
    esac
    shift
  done
  if [ "$PURGE" -eq 1 ] && [ "$MODE" != uninstall ]; then
    die "--purge only goes with --uninstall"
  fi
  if [ "$WIFI_PORTAL" -eq 1 ] && [ -n "$MODE" ]; then
    die "--wifi-portal is for installing a unit (sudo ./install.sh --wifi-portal), not with --$MODE"
  fi
  if [ "$ARCHIVE_REF" != HEAD ] && [ "$MODE" != archive ]; then
    die "--ref only goes with --release-archive"
  fi
  case "$MODE" in
    dev) install_dev ;;
    uninstall) uninstall ;;
    image) write_image_files ;;
    archive) make_release_archive ;;
    *) install_pi ;;
  esac
}

main "$@"
