#!/usr/bin/env bash
# Micromance first-boot installer: installs the unit from the copy of Micromance on the SD
# card's boot partition, with nobody at a keyboard.
#
#   firstboot.sh enable [--now]   copy this script to /usr/local/sbin/micromance-firstboot and
#                                 enable micromance-firstboot.service (--now: start it too,
#                                 without waiting); nothing once the unit is installed. Called
#                                 by the card's vendor-data (cloud-init) or firstrun.sh.
#   firstboot.sh run              the service: unpack micromance-<version>.tar.gz from the card,
#                                 wait for the internet, run its install.sh (with --wifi-portal
#                                 unless firstboot.conf says wifi_portal=no), reboot once if I2C
#                                 needs it. On failure it says why and tries again at the next
#                                 power-on.
#   firstboot.sh STEP TOTAL WHAT  install.sh's progress hook (MICROMANCE_PROGRESS): the status
#                                 file and the screen
#
# It writes /var/log/micromance-firstboot.log (a copy goes to the card, micromance/
# firstboot.log, readable on any computer) and /var/lib/micromance/firstboot.json (state,
# step, total, what, ok, error, attempt, updated: the unit's web page shows it on Check).
# The display shows the progress from the moment the unit's Python packages are installed
# (the screen is drawn by them); the steps before that show nothing.
#
# For tests: DESTDIR=DIR prefixes every path; SYSTEMCTL, INSTALL_SCREEN (the command that
# draws), NET_CHECK (a command that succeeds when the internet is reachable), NET_WAIT
# (seconds, default 600), DTPARAM and MODPROBE replace those tools.
set -uo pipefail

ROOT="${DESTDIR:-}"
ROOT="${ROOT%/}"
SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
SYSTEMCTL="${SYSTEMCTL:-systemctl}"
DTPARAM="${DTPARAM:-dtparam}"
MODPROBE="${MODPROBE:-modprobe}"
NET_WAIT="${NET_WAIT:-600}"

SERVICE=micromance-firstboot.service
INSTALLED_SELF=/usr/local/sbin/micromance-firstboot
UNIT_DIR=/etc/systemd/system
LOG=/var/log/micromance-firstboot.log
STATE_DIR=/var/lib/micromance
STATUS="$STATE_DIR/firstboot.json"
DONE="$STATE_DIR/firstboot.done"
ATTEMPTS="$STATE_DIR/firstboot.attempts"
WORK=/var/lib/micromance-firstboot
VENV_PYTHON=/opt/micromance/venv/bin/python
CONFIG=/etc/micromance/config.toml
# Where the card's boot partition is mounted: Bookworm and later, then older releases.
CARD_DIRS=(/boot/firmware/micromance /boot/micromance)

say() { printf 'micromance-firstboot: %s\n' "$*"; }

# The card's micromance/ folder (empty when there is none).
card_dir() {
  local dir
  for dir in "${CARD_DIRS[@]}"; do
    if [ -d "$ROOT$dir" ]; then
      printf '%s\n' "$ROOT$dir"
      return
    fi
  done
}

json_text() {
  local text="$1"
  text="${text//\\/\\\\}"
  text="${text//\"/\\\"}"
  text="${text//$'\n'/ }"
  text="${text//$'\t'/ }"
  text="${text//$'\r'/ }"
  printf '"%s"' "$text"
}

# status STATE STEP TOTAL WHAT OK ERROR: the status file, replaced in one rename.
status() {
  local attempt=0
  [ -f "$ROOT$ATTEMPTS" ] && attempt="$(cat "$ROOT$ATTEMPTS")"
  mkdir -p "$ROOT$STATE_DIR"
  {
    printf '{"state": %s, "step": %d, "total": %d, "what": %s, "ok": %s, ' \
      "$(json_text "$1")" "$2" "$3" "$(json_text "$4")" "$5"
    printf '"error": %s, "attempt": %d, "log": %s, "updated": %s}\n' \
      "$(json_text "$6")" "$attempt" "$(json_text "$LOG")" \
      "$(json_text "$(date -u +%Y-%m-%dT%H:%M:%SZ)")"
  } > "$ROOT$STATUS.new"
  chmod 0644 "$ROOT$STATUS.new"
  mv -f "$ROOT$STATUS.new" "$ROOT$STATUS"
}

# The last status field VALUE of KEY (numbers and plain strings only).
status_field() {
  [ -f "$ROOT$STATUS" ] || return 0
  sed -n "s/.*\"$1\": \"\\{0,1\\}\\([^\",}]*\\).*/\\1/p" "$ROOT$STATUS"
}

# Draw on the unit's display, once the unit's Python packages (luma) are there; before
# that, and whenever drawing fails, the screen simply shows nothing new.
draw() {
  [ -x "$ROOT$VENV_PYTHON" ] || return 0
  local command
  if [ -n "${INSTALL_SCREEN:-}" ]; then
    command=("$INSTALL_SCREEN")
  else
    command=("$ROOT$VENV_PYTHON" -m micromance.install_screen --config "$ROOT$CONFIG")
  fi
  timeout 60 "${command[@]}" "$@" >> "$ROOT$LOG" 2>&1 \
    || say "the display could not show it (see above)" >> "$ROOT$LOG"
}

copy_log_to_card() {
  local card
  card="$(card_dir)"
  if [ -n "$card" ] && [ -f "$ROOT$LOG" ]; then
    cp "$ROOT$LOG" "$card/firstboot.log" 2>/dev/null || true
    sync
  fi
}

# --- enable -------------------------------------------------------------------------------

enable() {
  local now=0 card
  [ "${1:-}" = --now ] && now=1
  if [ -e "$ROOT$DONE" ]; then
    return 0
  fi
  card="$(card_dir)"
  [ -n "$card" ] || { say "no micromance folder on the boot partition: nothing to install"; return 1; }
  install -D -m 0755 "$SELF" "$ROOT$INSTALLED_SELF"
  install -D -m 0644 "$card/$SERVICE" "$ROOT$UNIT_DIR/$SERVICE"
  "$SYSTEMCTL" daemon-reload || true
  "$SYSTEMCTL" enable "$SERVICE"
  if [ "$now" -eq 1 ]; then
    "$SYSTEMCTL" start --no-block "$SERVICE"
  fi
  say "enabled $SERVICE"
}

# --- progress: install.sh's hook ----------------------------------------------------------

on_progress() {
  if [ "$1" = "done" ]; then
    return 0  # run() decides what comes next
  fi
  local step="$1" total="$2" what="$3"
  status installing "$step" "$total" "$what" true ""
  draw progress --title "Installing" --step "$step" --total "$total" --detail "$what"
}

# --- run: the service ---------------------------------------------------------------------

# Wait until NET_CHECK succeeds, at most NET_WAIT seconds.
wait_for_internet() {
  local waited=0
  while ! internet; do
    if [ "$waited" -ge "$NET_WAIT" ]; then
      return 1
    fi
    sleep 10
    waited=$((waited + 10))
  done
}

internet() {
  if [ -n "${NET_CHECK:-}" ]; then
    $NET_CHECK >/dev/null 2>&1
  else
    getent hosts deb.debian.org >/dev/null 2>&1 && getent hosts pypi.org >/dev/null 2>&1
  fi
}

# The reason a person can act on, for the status, the log and the screen.
explain() {
  local what="$1"
  case "$what" in
    *packages*|*hotspot*)
      if internet; then
        printf 'could not install %s (see the log)' "$what"
      else
        printf 'no internet for %s' "$what"
      fi ;;
    *) printf 'could not set up %s (see the log)' "$what" ;;
  esac
}

fail() {
  local reason="$1" step total what
  step="$(status_field step)"; total="$(status_field total)"; what="$(status_field what)"
  step="${step:-0}"; total="${total:-0}"
  status failed "$step" "$total" "$what" false "$reason"
  say "FAILED at step $step/$total ($what): $reason. It tries again at the next power-on."
  draw problem --reason "Install failed" \
    --detail "${reason^}. Tries again at power-on. Log on the SD card: micromance/firstboot.log"
  exit 1
}

# Exit codes of one attempt: 0 installed, REBOOT_CODE installed and a reboot is due, 1 failed.
REBOOT_CODE=10

run() {
  local attempt=0 result=0
  if [ -e "$ROOT$DONE" ]; then
    say "already installed ($(cat "$ROOT$DONE")): nothing to do"
    "$SYSTEMCTL" disable "$SERVICE" >/dev/null 2>&1 || true
    return 0
  fi
  mkdir -p "$ROOT$STATE_DIR" "$(dirname "$ROOT$LOG")"
  [ -f "$ROOT$ATTEMPTS" ] && attempt="$(cat "$ROOT$ATTEMPTS")"
  attempt=$((attempt + 1))
  printf '%s\n' "$attempt" > "$ROOT$ATTEMPTS"
  # The log gets everything, the journal too (systemd reads this standard output).
  attempt "$attempt" 2>&1 | tee -a "$ROOT$LOG"
  result="${PIPESTATUS[0]}"
  copy_log_to_card
  case "$result" in
    0) return 0 ;;
    "$REBOOT_CODE") "$SYSTEMCTL" reboot --no-block ;;
    *) return 1 ;;
  esac
}

attempt() {
  local card archive source portal=(--wifi-portal) result=0 next total
  say "attempt $1, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  status installing 0 0 "unpacking Micromance" true ""

  card="$(card_dir)"
  [ -n "$card" ] || fail "the SD card has no micromance folder"
  archive="$(find "$card" -maxdepth 1 -name 'micromance-*.tar.gz' | sort | tail -n 1)"
  [ -n "$archive" ] || fail "the SD card's micromance folder has no micromance-<version>.tar.gz"
  if grep -qx 'wifi_portal=no' "$card/firstboot.conf" 2>/dev/null; then
    portal=()
  fi
  rm -rf "$ROOT$WORK"
  mkdir -p "$ROOT$WORK"
  tar -C "$ROOT$WORK" -xzf "$archive" || fail "could not unpack $(basename "$archive") (a damaged copy? copy the folder again)"
  source="$(find "$ROOT$WORK" -mindepth 2 -maxdepth 2 -name install.sh | head -n 1)"
  [ -n "$source" ] || fail "$(basename "$archive") has no install.sh"
  say "installing from $(basename "$archive")"

  # I2C now, so the display works during this boot (the boot config follows at the reboot).
  if command -v "$DTPARAM" >/dev/null 2>&1; then
    if ! { "$DTPARAM" i2c_arm=on && "$MODPROBE" i2c-dev; }; then
      say "could not switch I2C on now: the display stays dark until the reboot"
    fi
  fi

  status installing 0 0 "waiting for the internet" true ""
  wait_for_internet || fail "no internet: set the Wi-Fi in Raspberry Pi Imager, or plug in a network cable"

  next="$(MICROMANCE_PROGRESS="$SELF" MICROMANCE_START_NO_BLOCK=1 \
            "$source" "${portal[@]}" | tee /dev/stderr | sed -n 's/^micromance-install: step done //p')" \
    || result=$?
  if [ "$result" -ne 0 ]; then
    fail "$(explain "$(status_field what)")"
  fi

  date -u +%Y-%m-%dT%H:%M:%SZ > "$ROOT$DONE"
  "$SYSTEMCTL" disable "$SERVICE" || true
  total="$(status_field total)"
  if [ "$next" = reboot ]; then
    status rebooting "$total" "$total" "restarting once to switch I2C on" true ""
    say "installed; restarting once to switch I2C on"
    draw progress --title "Restarting" --step "$total" --total "$total" \
      --detail "once, to finish"
    return "$REBOOT_CODE"
  fi
  status "done" "$total" "$total" "installed" true ""
  say "installed; the unit starts now"
}

main() {
  case "${1:-}" in
    enable) shift; enable "$@" ;;
    run) run ;;
    [0-9]*|done) on_progress "$@" ;;
    *) sed -n '2,/^set /{/^#/{s/^# \{0,1\}//;p}}' "$SELF" >&2; exit 2 ;;
  esac
}

main "$@"
