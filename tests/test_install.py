"""install.sh on a "Pi" that is a temporary directory (DESTDIR), with apt, systemctl and the
account tools replaced by recorders that keep just enough state to answer the installer's
questions. The installer must be idempotent and never touch config or state it did not make.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INSTALL = ROOT / "install.sh"
EXAMPLE_CONFIG = ROOT / "firmware_config" / "micromance.toml"
UNIT = ROOT / "systemd" / "micromance.service"
BOOT_CONFIG = "boot/firmware/config.txt"

#: One script behind every stand-in tool: it logs its call and keeps a tiny system state.
FAKE_TOOL = r"""#!/usr/bin/env bash
tool="$(basename "$0")"
state="$FAKE_STATE"
printf '%s\n' "$tool $*" >> "$state/calls.log"
last="${!#}"
case "$tool" in
  dpkg-query) grep -qx "$last" "$state/packages" 2>/dev/null && echo "install ok installed" ;;
  apt-get) if [ "$1" = install ]; then
             for word in "$@"; do
               case "$word" in -*|install) ;; *) echo "$word" >> "$state/packages" ;; esac
             done
           fi ;;
  getent) grep "^$2:" "$state/$1" 2>/dev/null || exit 2 ;;
  useradd) echo "$last:x:999:999::/var/lib/micromance:/usr/sbin/nologin" >> "$state/passwd"
           echo "$last:x:999:" >> "$state/group" ;;
  groupadd) echo "$last:x:998:" >> "$state/group" ;;
  usermod) sed -i -e "s/^\($3:[^:]*:[^:]*:\)\(.\+\)$/\1\2,$last/" \
                  -e "s/^\($3:[^:]*:[^:]*:\)$/\1$last/" "$state/group" ;;
  userdel) sed -i "/^$last:/d" "$state/passwd" ;;
  systemctl) case "$1" in
      is-enabled) [ -f "$state/enabled" ] ;;
      is-active) [ -f "$state/active" ] ;;
      enable) touch "$state/enabled" ;;
      disable) rm -f "$state/enabled"; if [ "$2" = --now ]; then rm -f "$state/active"; fi ;;
      start|restart) touch "$state/active" ;;
      stop) rm -f "$state/active" ;;
    esac ;;
esac
"""
TOOLS = {"apt-get": "APT_GET", "dpkg-query": "DPKG_QUERY", "getent": "GETENT",
         "useradd": "USERADD", "usermod": "USERMOD", "userdel": "USERDEL",
         "groupadd": "GROUPADD", "systemctl": "SYSTEMCTL"}
#: Calls that only ask; everything else changes the system.
QUERIES = ("dpkg-query ", "getent ", "systemctl is-enabled ", "systemctl is-active ")


class FakePi:
    """A root directory, stand-in tools and their state; ``install(...)`` runs install.sh."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path / "root"
        self.state = tmp_path / "fake-state"
        self.bin = tmp_path / "fake-bin"
        for directory in (self.root, self.state, self.bin):
            directory.mkdir()
        tool = self.bin / "fake-tool"
        tool.write_text(FAKE_TOOL)
        tool.chmod(0o755)
        for name in TOOLS:
            (self.bin / name).symlink_to(tool)
        (self.root / BOOT_CONFIG).parent.mkdir(parents=True)
        (self.root / BOOT_CONFIG).write_text("dtparam=audio=on\n")

    def environment(self, **extra: str) -> dict[str, str]:
        environment = {k: v for k, v in os.environ.items()
                       if k not in TOOLS.values() and not k.startswith("PIP_")}
        environment.update({variable: str(self.bin / name) for name, variable in TOOLS.items()})
        environment.update(DESTDIR=str(self.root), FAKE_STATE=str(self.state),
                           MICROMANCE_SKIP_VENV="1", MODEL_FILE=str(self.root / "no-model"))
        environment.update(extra)
        return environment

    def install(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        self.forget_calls()
        result = subprocess.run([str(INSTALL), *args], capture_output=True, text=True,
                                env=self.environment(**env), timeout=120)
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    def calls(self) -> list[str]:
        log = self.state / "calls.log"
        return log.read_text().splitlines() if log.exists() else []

    def changes(self) -> list[str]:
        return [call for call in self.calls() if not call.startswith(QUERIES)]

    def forget_calls(self) -> None:
        (self.state / "calls.log").unlink(missing_ok=True)

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    def snapshot(self) -> dict[str, tuple]:
        """Every file and link under the root: content, mode and modification time."""
        found = {}
        for path in sorted(self.root.rglob("*")):
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                found[str(path)] = ("link", os.readlink(path))
            elif stat.S_ISREG(info.st_mode):
                found[str(path)] = (path.read_bytes(), info.st_mode, info.st_mtime_ns)
        return found

    def account(self, database: str, name: str) -> str:
        path = self.state / database
        lines = path.read_text().splitlines() if path.exists() else []
        return next((line for line in lines if line.startswith(f"{name}:")), "")

    def after_reboot(self) -> None:
        """I2C is live once the Pi rebooted with the new config.txt."""
        self.path("/dev/i2c-1").parent.mkdir(exist_ok=True)
        self.path("/dev/i2c-1").touch()


@pytest.fixture
def pi(tmp_path) -> FakePi:
    return FakePi(tmp_path)


def test_refuses_a_machine_that_is_not_a_pi(pi):
    environment = pi.environment(MODEL_FILE="/nonexistent/model")
    del environment["DESTDIR"]
    result = subprocess.run([str(INSTALL)], capture_output=True, text=True, env=environment,
                            timeout=60)
    assert result.returncode == 1
    assert "not a Raspberry Pi" in result.stderr
    assert "--dev" in result.stderr and "--force-pi" in result.stderr
    assert pi.calls() == []


def test_purge_only_goes_with_uninstall(pi):
    result = pi.install("--purge", check=False)
    assert result.returncode == 1 and "--uninstall" in result.stderr


def test_dry_run_prints_every_change_and_makes_none(pi):
    before = pi.snapshot()
    result = pi.install("--dry-run")
    out = result.stdout
    assert pi.snapshot() == before
    assert pi.changes() == []
    for expected in ("apt-get install -y -qq --no-install-recommends python3",
                     "python3-lgpio", "i2c-tools", "mosquitto-clients", "fonts-dejavu-core",
                     "+dtparam=i2c_arm=on", "modules-load.d",
                     "useradd --system --user-group", "usermod --append --groups gpio",
                     "usermod --append --groups i2c",
                     f"install -D -m 0644 {EXAMPLE_CONFIG}",
                     f"install -D -m 0644 {UNIT}", "systemctl enable micromance.service",
                     "dry run: nothing was changed"):
        assert expected in out, expected


def test_install_sets_up_everything_and_waits_for_the_reboot(pi):
    result = pi.install()
    assert pi.path("/etc/micromance/config.toml").read_text() == EXAMPLE_CONFIG.read_text()
    assert pi.path("/etc/systemd/system/micromance.service").read_bytes() == UNIT.read_bytes()
    assert "dtparam=i2c_arm_baudrate=400000" in pi.path(BOOT_CONFIG).read_text()
    assert "i2c-dev" in pi.path("/etc/modules-load.d/micromance.conf").read_text()
    packages = (pi.state / "packages").read_text().split()
    assert {"python3-venv", "python3-lgpio", "i2c-tools", "mosquitto-clients"} <= set(packages)
    assert pi.account("passwd", "micromance").endswith(":/usr/sbin/nologin")
    for group in ("gpio", "i2c"):
        assert "micromance" in pi.account("group", group).split(":")[3].split(",")
    changes = pi.changes()
    assert "systemctl daemon-reload" in changes
    assert "systemctl enable micromance.service" in changes
    assert not any(c.startswith(("systemctl start", "systemctl restart")) for c in changes)
    assert "Reboot now" in result.stdout and "micromance doctor" in result.stdout


def test_a_second_run_changes_nothing(pi):
    pi.install()
    before = pi.snapshot()
    second = pi.install()
    assert pi.changes() == []
    assert pi.snapshot() == before
    assert "keeping your config" in second.stdout


def test_after_the_reboot_it_starts_the_service_once(pi):
    pi.install()
    pi.after_reboot()
    pi.install()
    assert pi.changes() == ["systemctl start micromance.service"]
    pi.install()
    assert pi.changes() == []


def test_a_new_unit_file_restarts_the_running_service(pi):
    pi.install()
    pi.after_reboot()
    pi.install()
    pi.path("/etc/systemd/system/micromance.service").write_text("# an older version\n")
    pi.install()
    assert pi.changes() == ["systemctl daemon-reload", "systemctl restart micromance.service"]
    assert pi.path("/etc/systemd/system/micromance.service").read_bytes() == UNIT.read_bytes()


def test_an_edited_config_is_never_touched(pi):
    pi.install()
    config = pi.path("/etc/micromance/config.toml")
    config.write_text('[device]\nname = "Alex"\n')
    pi.install()
    pi.install("--uninstall")
    pi.install()
    assert config.read_text() == '[device]\nname = "Alex"\n'


def test_uninstall_keeps_config_state_and_user(pi):
    pi.install()
    pi.after_reboot()
    pi.install()
    state = pi.path("/var/lib/micromance/state.db")
    state.parent.mkdir(parents=True)
    state.write_bytes(b"SQLite format 3\0")
    pi.path("/opt/micromance/venv/bin").mkdir(parents=True)

    result = pi.install("--uninstall")
    assert "systemctl disable --now micromance.service" in pi.changes()
    assert not pi.path("/etc/systemd/system/micromance.service").exists()
    assert not pi.path("/opt/micromance").exists()
    assert "micromance" not in pi.path(BOOT_CONFIG).read_text()
    assert not pi.path("/etc/modules-load.d/micromance.conf").exists()
    assert pi.path("/etc/micromance/config.toml").exists()
    assert state.read_bytes() == b"SQLite format 3\0"
    assert pi.account("passwd", "micromance")
    assert "--purge" in result.stdout

    again = pi.install("--uninstall")
    assert pi.changes() == [] and again.returncode == 0


def test_purge_removes_config_state_and_user(pi):
    pi.install()
    pi.path("/var/lib/micromance").mkdir(parents=True)
    pi.path("/var/lib/micromance/pair.json").write_text("{}")
    pi.install("--uninstall", "--purge")
    assert not pi.path("/etc/micromance").exists()
    assert not pi.path("/var/lib/micromance").exists()
    assert "userdel micromance" in pi.changes()
    assert pi.account("passwd", "micromance") == ""


def test_uninstall_dry_run_changes_nothing(pi):
    pi.install()
    before = pi.snapshot()
    result = pi.install("--uninstall", "--purge", "--dry-run")
    assert pi.snapshot() == before
    assert pi.changes() == []
    assert "would run: rm -rf" in result.stdout


def test_a_real_venv_sees_system_packages_and_holds_micromance(pi):
    """The one slow test (~7 s): python3 -m venv and pip install from this checkout."""
    result = pi.install(MICROMANCE_SKIP_VENV="0", PIP_NO_DEPS="1")
    venv = pi.path("/opt/micromance/venv")
    assert "include-system-site-packages = true" in (venv / "pyvenv.cfg").read_text()
    imported = subprocess.run([str(venv / "bin" / "python"), "-c",
                               "import micromance; print(micromance.__file__)"],
                              capture_output=True, text=True, check=True)
    assert str(venv) in imported.stdout
    link = pi.path("/usr/local/bin/micromance")
    assert os.readlink(link) == "/opt/micromance/venv/bin/micromance"
    assert "installing micromance from" in result.stdout

    again = pi.install(MICROMANCE_SKIP_VENV="0", PIP_NO_DEPS="1")
    assert "is up to date" in again.stdout and "installing micromance" not in again.stdout
