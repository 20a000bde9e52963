#!/usr/bin/env bash
# Turn the Raspberry Pi's I2C bus on for Micromance, or undo it.
#
#   boot-config.sh apply    put boot-config.txt between marker lines in the boot config.txt
#                           and load i2c-dev at boot (a dated backup is kept beside config.txt)
#   boot-config.sh undo     remove what apply added (again with a backup)
#   boot-config.sh status   exit 0 when applied and current, 3 when not, 4 without config.txt
#
# Options: --root DIR (default: $DESTDIR) treats DIR as /, for tests and images;
#          --dry-run prints what would change and changes nothing.
# config.txt is /boot/firmware/config.txt on Bookworm, /boot/config.txt on older releases.
# The firmware reads it at power-on only: after apply or undo, reboot.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FRAGMENT="$HERE/boot-config.txt"
BEGIN_MARK="# >>> micromance: I2C and buttons (managed by install.sh; undo: install.sh --uninstall) >>>"
END_MARK="# <<< micromance <<<"
MODULES_FILE="etc/modules-load.d/micromance.conf"
ROOT="${DESTDIR:-}"
DRY_RUN=0

EXIT_NOT_APPLIED=3
EXIT_NO_CONFIG=4

say() { printf 'micromance-boot-config: %s\n' "$*"; }
die() { printf 'micromance-boot-config: error: %s\n' "$*" >&2; exit 1; }

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

# The config.txt the firmware reads: Bookworm's first (its /boot/config.txt is a stub).
find_config_txt() {
  local candidate
  for candidate in boot/firmware/config.txt boot/config.txt; do
    if [ -f "$ROOT/$candidate" ]; then
      printf '%s\n' "$ROOT/$candidate"
      return 0
    fi
  done
  return 1
}

# The block apply writes: the fragment between the two marker lines.
desired_block() {
  printf '%s\n' "$BEGIN_MARK"
  cat "$FRAGMENT"
  printf '%s\n' "$END_MARK"
}

# The block currently in config.txt (empty when there is none).
current_block() {
  awk -v begin="$BEGIN_MARK" -v end="$END_MARK" '
    $0 == begin { inside = 1 }
    inside { print }
    $0 == end { inside = 0 }' "$1"
}

# config.txt without our block.
without_block() {
  awk -v begin="$BEGIN_MARK" -v end="$END_MARK" '
    $0 == begin { inside = 1; next }
    inside && $0 == end { inside = 0; next }
    !inside { print }' "$1"
}

# config.txt with the desired block: in place of the old one, else appended at the end.
with_block() {
  local config="$1" block
  block="$(mktemp)"
  desired_block > "$block"
  if [ -n "$(current_block "$config")" ]; then
    awk -v begin="$BEGIN_MARK" -v end="$END_MARK" -v block="$block" '
      $0 == begin { inside = 1; while ((getline line < block) > 0) print line; next }
      inside && $0 == end { inside = 0; next }
      !inside { print }' "$config"
  else
    cat "$config"
    # A file without a final newline would glue our first line onto its last one.
    if [ -s "$config" ] && [ "$(tail -c 1 "$config")" != "" ]; then
      printf '\n'
    fi
    cat "$block"
  fi
  rm -f "$block"
}

# A backup name that is dated and never overwrites an earlier backup.
backup_name() {
  local base
  base="$1.micromance-backup-$(date +%Y%m%d-%H%M%S)"
  local name="$base" n=1
  while [ -e "$name" ]; do
    n=$((n + 1))
    name="$base-$n"
  done
  printf '%s\n' "$name"
}

# Replace config.txt with new content (from stdin) after a dated backup.
rewrite_config() {
  local config="$1" description="$2" backup new
  new="$(mktemp)"
  cat > "$new"
  if [ "$DRY_RUN" -eq 1 ]; then
    say "would change $config ($description); the difference:"
    diff -u "$config" "$new" | tail -n +3 || true
    rm -f "$new"
    return
  fi
  backup="$(backup_name "$config")"
  cp -p "$config" "$backup"
  # Copy over the file rather than renaming: /boot/firmware is FAT, and the mode is kept.
  cat "$new" > "$config"
  rm -f "$new"
  sync
  say "changed $config ($description; backup: $backup)"
}

modules_path() { printf '%s/%s\n' "$ROOT" "$MODULES_FILE"; }

apply_modules() {
  local path
  path="$(modules_path)"
  if [ -f "$path" ] && grep -qx 'i2c-dev' "$path"; then
    return
  fi
  if [ "$DRY_RUN" -eq 1 ]; then
    say "would write $path: i2c-dev (loads /dev/i2c-* at boot)"
    return
  fi
  mkdir -p "$(dirname "$path")"
  printf '# Written by micromance install.sh: I2C device files for the display.\ni2c-dev\n' \
    > "$path"
  say "wrote $path (i2c-dev at boot)"
}

undo_modules() {
  local path
  path="$(modules_path)"
  [ -f "$path" ] || return 0
  if [ "$DRY_RUN" -eq 1 ]; then
    say "would remove $path"
    return
  fi
  rm -f "$path"
  say "removed $path"
}

config_or_die() {
  find_config_txt || die "no boot config found (looked for $ROOT/boot/firmware/config.txt and $ROOT/boot/config.txt): is this Raspberry Pi OS? Enable I2C by hand: sudo raspi-config nonint do_i2c 0"
}

is_current() {
  local config="$1"
  [ "$(current_block "$config")" = "$(desired_block)" ] \
    && [ -f "$(modules_path)" ] && grep -qx 'i2c-dev' "$(modules_path)"
}

do_status() {
  local config
  if ! config="$(find_config_txt)"; then
    say "no config.txt in $ROOT/boot/firmware or $ROOT/boot"
    return "$EXIT_NO_CONFIG"
  fi
  if is_current "$config"; then
    say "I2C settings are in $config"
    return 0
  fi
  say "I2C settings are missing or outdated in $config"
  return "$EXIT_NOT_APPLIED"
}

do_apply() {
  local config
  config="$(config_or_die)"
  if is_current "$config"; then
    say "I2C settings already in $config: nothing to do"
    return
  fi
  if [ "$(current_block "$config")" != "$(desired_block)" ]; then
    with_block "$config" | rewrite_config "$config" "I2C settings written"
  fi
  apply_modules
  if [ "$DRY_RUN" -eq 0 ]; then
    say "reboot needed to switch I2C on: sudo reboot"
  fi
}

do_undo() {
  local config
  config="$(config_or_die)"
  if [ -n "$(current_block "$config")" ]; then
    without_block "$config" | rewrite_config "$config" "micromance settings removed"
    if [ "$DRY_RUN" -eq 0 ]; then
      say "reboot needed for the change to take effect: sudo reboot"
    fi
  else
    say "no micromance settings in $config: nothing to undo"
  fi
  undo_modules
}

main() {
  local command=""
  while [ $# -gt 0 ]; do
    case "$1" in
      apply|undo|status) command="$1" ;;
      --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT="$2"; shift ;;
      --root=*) ROOT="${1#--root=}" ;;
      --dry-run) DRY_RUN=1 ;;
      -h|--help) usage; exit 0 ;;
      *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
  done
  ROOT="${ROOT%/}"
  case "$command" in
    apply) do_apply ;;
    undo) do_undo ;;
    status) do_status ;;
    *) usage >&2; die "say apply, undo or status" ;;
  esac
}

main "$@"
