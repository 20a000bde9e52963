#!/usr/bin/env bash
# Micromance installer.
#
#   ./install.sh --dev        desktop / CI: Debian packages for the tests, ./.venv, the package
#   ./install.sh --dry-run    print every change instead of making it (combine with --dev)
#
# Idempotent: a second run changes nothing. It never touches user config or state.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DRY_RUN=0
MODE=""

# Debian packages a desktop or CI machine needs to run the whole test suite.
DEV_APT_PACKAGES=(python3 python3-venv python3-pip mosquitto shellcheck)

usage() {
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
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
  if [ "$(id -u)" -eq 0 ]; then
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
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
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
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install ${missing[*]} by hand"
  say "installing Debian packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}"
}

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

main() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --dev) MODE=dev ;;
      --dry-run) DRY_RUN=1 ;;
      -h|--help) usage; exit 0 ;;
      *) usage >&2; die "unknown option: $1" ;;
    esac
    shift
  done
  case "$MODE" in
    dev) install_dev ;;
    *) usage >&2; die "the Raspberry Pi installation is not written yet: use --dev" ;;
  esac
}

main "$@"
