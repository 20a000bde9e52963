"""install.sh on a "Pi" that is a temporary directory (DESTDIR), with apt, systemctl and the
account tools replaced by recorders that keep just enough state to answer the installer's
questions. The installer must be idempotent and never touch config or state it did not make.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INSTALL = ROOT / "install.sh"
EXAMPLE_CONFIG = ROOT / "firmware_config" / "micromance.toml"
UNIT = ROOT / "systemd" / "micromance.service"
WEB_SOCKET = "micromance-web.socket"
WEB_SERVICE = "micromance-web.service"
COMITUP_TEMPLATE = ROOT / "firmware_config" / "comitup.conf"
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
      is-enabled) [ -f "$state/enabled.$last" ] ;;
      is-active) [ -f "$state/active.$last" ] ;;
      enable) touch "$state/enabled.$last" ;;
      disable) rm -f "$state/enabled.$last"
               if [ "$2" = --now ]; then rm -f "$state/active.$last"; fi ;;
      start|restart) touch "$state/active.$last" ;;
      stop) rm -f "$state/active.$last" ;;
    esac ;;
  chgrp) touch "$state/groups"
         grep -v "^$last " "$state/groups" > "$state/groups.new"
         echo "$last $1" >> "$state/groups.new"; mv "$state/groups.new" "$state/groups" ;;
  stat) if [ "$2" = %G ]; then  # the group chgrp gave the file, else whatever it really has
          grep "^$last " "$state/groups" 2>/dev/null | cut -d' ' -f2 | grep . \
            || command stat "$@"
        else
          command stat "$@"
        fi ;;
esac
"""
TOOLS = {"apt-get": "APT_GET", "dpkg-query": "DPKG_QUERY", "getent": "GETENT",
         "useradd": "USERADD", "usermod": "USERMOD", "userdel": "USERDEL",
         "groupadd": "GROUPADD", "systemctl": "SYSTEMCTL", "chgrp": "CHGRP", "stat": "STAT"}
#: Calls that only ask; everything else changes the system.
QUERIES = ("dpkg-query ", "getent ", "systemctl is-enabled ", "systemctl is-active ", "stat ")


class FakePi:
    """A root directory, stand-in tools and their state; ``install(...)`` runs install.sh."""

    def __init__(self, tmp_path: Path, installer: Path = INSTALL) -> None:
        self.installer = installer
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
        result = subprocess.run([str(self.installer), *args], capture_output=True, text=True,
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

    def group_of(self, absolute: str) -> str:
        """The group chgrp gave a path ("" if none did)."""
        groups = self.state / "groups"
        lines = groups.read_text().splitlines() if groups.exists() else []
        path = str(self.path(absolute))
        return next((line.split()[1] for line in lines if line.split()[0] == path), "")

    def active(self, unit: str) -> bool:
        return (self.state / f"active.{unit}").exists()

    def enabled(self, unit: str) -> bool:
        return (self.state / f"enabled.{unit}").exists()

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
    web = [f"systemctl start {WEB_SOCKET}"] if (ROOT / "systemd" / WEB_SOCKET).exists() else []
    assert pi.changes() == ["systemctl start micromance.service", *web]
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


# --- the web page: its config access, its socket ------------------------------------------------


def test_the_service_group_may_write_the_config_and_its_directory(pi):
    pi.install()
    for path, mode in (("/etc/micromance", 0o2775), ("/etc/micromance/config.toml", 0o664)):
        assert pi.group_of(path) == "micromance", path
        assert stat.S_IMODE(pi.path(path).stat().st_mode) == mode, path
    assert f"chgrp micromance {pi.path('/etc/micromance')}" in pi.changes()


def test_an_older_installs_config_gets_the_group_and_keeps_its_words(pi):
    config = pi.path("/etc/micromance/config.toml")
    config.parent.mkdir(parents=True)
    config.write_text('# mine\n[device]\nname = "Alex"\n')
    config.chmod(0o644)
    config.parent.chmod(0o755)
    result = pi.install()
    assert "keeping your config" in result.stdout
    assert config.read_text() == '# mine\n[device]\nname = "Alex"\n'
    assert stat.S_IMODE(config.stat().st_mode) == 0o664
    assert pi.group_of("/etc/micromance/config.toml") == "micromance"
    assert "the web page saves settings" in result.stdout
    pi.install()
    assert pi.changes() == []


def test_dry_run_says_it_would_share_the_config_with_the_group(pi):
    result = pi.install("--dry-run")
    assert f"/chgrp micromance {pi.path('/etc/micromance')}\n" in result.stdout
    assert f"would run: chmod 2775 {pi.path('/etc/micromance')}" in result.stdout
    assert pi.changes() == []


def checkout_with_web_units(tmp_path: Path) -> Path:
    """A copy of the installer's files whose systemd/ has a web socket and service: the
    installer handles the units it finds, whatever this checkout ships today."""
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT / "firmware_config", checkout / "firmware_config")
    shutil.copytree(ROOT / "systemd", checkout / "systemd")
    shutil.copy2(INSTALL, checkout / "install.sh")
    if not (checkout / "systemd" / WEB_SOCKET).exists():
        (checkout / "systemd" / WEB_SOCKET).write_text(
            "[Socket]\nListenStream=8080\n\n[Install]\nWantedBy=sockets.target\n")
        (checkout / "systemd" / WEB_SERVICE).write_text(
            "[Service]\nExecStart=/opt/micromance/venv/bin/micromance web\n")
    return checkout


@pytest.fixture
def web_pi(tmp_path) -> FakePi:
    return FakePi(tmp_path, checkout_with_web_units(tmp_path) / "install.sh")


def test_the_web_socket_is_installed_enabled_and_started_after_the_reboot(web_pi):
    pi = web_pi
    systemd = pi.installer.parent / "systemd"
    pi.install()
    for unit in (WEB_SOCKET, WEB_SERVICE):
        assert pi.path(f"/etc/systemd/system/{unit}").read_bytes() \
            == (systemd / unit).read_bytes()
    assert pi.enabled(WEB_SOCKET) and pi.enabled("micromance.service")
    assert not pi.enabled(WEB_SERVICE)  # socket-activated: the socket starts it
    assert pi.changes().count("systemctl daemon-reload") == 1
    assert not pi.active(WEB_SOCKET)  # the reboot comes first
    pi.after_reboot()
    pi.install()
    assert pi.changes() == ["systemctl start micromance.service",
                            f"systemctl start {WEB_SOCKET}"]
    pi.install()
    assert pi.changes() == []


def test_a_new_web_unit_ends_the_running_page_and_restarts_its_socket(web_pi):
    pi = web_pi
    pi.install()
    pi.after_reboot()
    pi.install()
    (pi.state / f"active.{WEB_SERVICE}").touch()  # someone is looking at the page
    pi.path(f"/etc/systemd/system/{WEB_SOCKET}").write_text("# an older version\n")
    pi.install()
    assert pi.changes() == ["systemctl daemon-reload", f"systemctl stop {WEB_SERVICE}",
                            f"systemctl restart {WEB_SOCKET}"]


def test_uninstall_removes_the_web_units_socket_first(web_pi):
    pi = web_pi
    pi.install()
    pi.after_reboot()
    pi.install()
    pi.install("--uninstall")
    changes = pi.changes()
    assert changes.index(f"systemctl disable --now {WEB_SOCKET}") \
        < changes.index("systemctl disable --now micromance.service")
    for unit in (WEB_SOCKET, WEB_SERVICE, "micromance.service"):
        assert not pi.path(f"/etc/systemd/system/{unit}").exists()
    assert changes.count("systemctl daemon-reload") == 1


# --- --dev: what the browser tests need -----------------------------------------------------------


def test_dev_installs_chromium_and_its_driver_for_the_browser_tests(pi):
    result = pi.install("--dev", "--dry-run")
    [apt_install] = [line for line in result.stdout.splitlines()
                     if line.startswith("would run:") and " install -y " in line]
    packages = apt_install.split("--no-install-recommends")[1].split()
    assert {"chromium", "chromium-driver", "fonts-dejavu-core", "mosquitto"} <= set(packages)
    assert pi.changes() == []
    (pi.state / "packages").write_text("\n".join(packages) + "\n")
    again = pi.install("--dev", "--dry-run")
    assert "Debian packages already installed" in again.stdout
    assert "apt-get" not in again.stdout


# --- --wifi-portal: comitup ---------------------------------------------------------------------


def comitup_settings(text: str) -> dict[str, str]:
    """The file read the way comitup reads it: ConfigParser, under a section it adds."""
    import configparser

    parser = configparser.ConfigParser()
    parser.read_string("[DEFAULT]\n" + text)
    return dict(parser["DEFAULT"])


def test_the_comitup_template_names_the_units_hotspot_and_page():
    settings = comitup_settings(COMITUP_TEMPLATE.read_text())
    assert settings == {"ap_name": "micromance-<nnnn>", "web_service": WEB_SOCKET}
    # Four n: comitup's longest persistent number; an ASCII name for mDNS.
    assert settings["ap_name"].isascii() and " " not in settings["ap_name"]


def test_wifi_portal_dry_run_shows_comitup_and_its_config(pi):
    before = pi.snapshot()
    result = pi.install("--wifi-portal", "--dry-run")
    assert pi.snapshot() == before and pi.changes() == []
    assert "--no-install-recommends comitup" in result.stdout
    assert f"would run: install -D -m 0644 {COMITUP_TEMPLATE} {pi.path('/etc/comitup.conf')}" \
        in result.stdout


def test_wifi_portal_installs_comitup_and_keeps_its_own_file_aside(pi):
    shipped = "# comitup configuration\n#\n# ap_name: comitup-<nnn>\n"
    pi.path("/etc/comitup.conf").parent.mkdir(parents=True)
    pi.path("/etc/comitup.conf").write_text(shipped)
    result = pi.install("--wifi-portal")
    assert "comitup" in (pi.state / "packages").read_text().split()
    written = pi.path("/etc/comitup.conf").read_text()
    assert written == COMITUP_TEMPLATE.read_text()
    assert comitup_settings(written)["ap_name"] == "micromance-<nnnn>"
    assert pi.path("/etc/comitup.conf.micromance-orig").read_text() == shipped
    assert "Reboot now" in result.stdout

    before = pi.snapshot()
    pi.install("--wifi-portal")
    assert pi.changes() == [] and pi.snapshot() == before

    removed = pi.install("--uninstall")
    assert pi.path("/etc/comitup.conf").read_text() == shipped
    assert not pi.path("/etc/comitup.conf.micromance-orig").exists()
    assert "apt-get remove comitup" in removed.stdout


def test_a_comitup_config_with_settings_of_its_own_is_left_alone(pi):
    own = "ap_name: kitchen-<nn>\nap_password: hunter2hunter2\n"
    pi.path("/etc/comitup.conf").parent.mkdir(parents=True)
    pi.path("/etc/comitup.conf").write_text(own)
    result = pi.install("--wifi-portal")
    assert pi.path("/etc/comitup.conf").read_text() == own
    assert "keeping your /etc/comitup.conf" in result.stdout
    assert f"web_service: {WEB_SOCKET}" in result.stdout
    pi.install("--uninstall")
    assert pi.path("/etc/comitup.conf").read_text() == own


def test_without_comitups_file_uninstall_removes_ours(pi):
    pi.install("--wifi-portal")
    pi.install("--uninstall")
    assert not pi.path("/etc/comitup.conf").exists()


@pytest.mark.parametrize("other", ["--dev", "--uninstall"])
def test_wifi_portal_goes_only_with_a_unit_install(pi, other):
    result = pi.install("--wifi-portal", other, check=False)
    assert result.returncode == 1
    assert "--wifi-portal is for installing a unit" in result.stderr
    assert pi.changes() == []


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
