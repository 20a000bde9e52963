"""The first-boot installer, from the files `install.sh --image-files` writes to a card to a
unit installed in a throw-away root: apt, systemctl, the account tools, python3 (the venv and
pip) and the display are recording stand-ins (tests/test_install.py's FakePi, plus a few
here). Also: the cloud-init file against Debian's `cloud-init schema`, Imager's firstrun.sh
hook, the release archive, the install screen on luma's dummy display, and the Check line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from micromance.firstboot import firstboot_lines
from micromance.install_screen import main as install_screen
from micromance.screens.render import render
from micromance.screens.views import Frame, ProblemView, ProgressView
from tests.conftest import running_in_ci
from tests.test_install import COMITUP_TEMPLATE, EXAMPLE_CONFIG, INSTALL, ROOT, FakePi

FIRSTBOOT = ROOT / "firmware_config" / "firstboot"
VERSION = next(line.split('"')[1] for line in (ROOT / "pyproject.toml").read_text().splitlines()
               if line.startswith("version = "))

#: python3 and the venv's python: `-m venv` makes the venv, `-m pip` installs unless told to
#: fail, `-c "import micromance"` succeeds once pip did.
FAKE_PYTHON = r"""#!/usr/bin/env bash
printf '%s\n' "python $*" >> "$FAKE_STATE/calls.log"
last="${!#}"
case "$1 $2" in
  "-m venv") mkdir -p "$last/bin"; cp "$0" "$last/bin/python"
             echo "include-system-site-packages = true" > "$last/pyvenv.cfg" ;;
  "-m pip") touch "$FAKE_STATE/pip-installed" ;;
  "-c import micromance") [ -f "$FAKE_STATE/pip-installed" ] ;;
esac
"""
#: apt-get that loses the internet while downloading the package named in ``apt-offline``.
FAKE_APT = r"""#!/usr/bin/env bash
if [ "$1" = install ] && [ -f "$FAKE_STATE/apt-offline" ]; then
  for word in "$@"; do
    if [ "$word" = "$(cat "$FAKE_STATE/apt-offline")" ]; then
      rm -f "$FAKE_STATE/online"
      echo "E: Failed to fetch $word: Temporary failure resolving 'deb.debian.org'" >&2
      exit 100
    fi
  done
fi
exec "$(dirname "$0")/real/apt-get" "$@"
"""
#: The display: records what it was asked to show.
FAKE_SCREEN = r"""#!/usr/bin/env bash
printf '%s\n' "$*" >> "$FAKE_STATE/screen.log"
"""


def script(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


class FirstBootPi(FakePi):
    """A FakePi whose boot partition holds the image files, with the first boot's tools."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        self.boot = self.path("/boot/firmware")
        (self.boot / "cmdline.txt").write_text("console=tty1 root=PARTUUID=1234-02 rootwait\n")
        script(self.bin / "python3", FAKE_PYTHON)
        (self.bin / "real").mkdir()
        (self.bin / "apt-get").unlink()
        (self.bin / "real" / "apt-get").symlink_to(self.bin / "fake-tool")
        script(self.bin / "apt-get", FAKE_APT)
        script(self.bin / "screen", FAKE_SCREEN)
        script(self.bin / "dtparam",
               "#!/bin/sh\necho \"dtparam $*\" >> \"$FAKE_STATE/calls.log\"\n")
        script(self.bin / "modprobe",
               "#!/bin/sh\necho \"modprobe $*\" >> \"$FAKE_STATE/calls.log\"\n")
        self.online()
        result = subprocess.run([str(INSTALL), "--image-files", str(self.boot)],
                                capture_output=True, text=True, timeout=60, check=True)
        self.image_output = result.stdout

    def online(self, up: bool = True) -> None:
        (self.state / "online").touch() if up else (self.state / "online").unlink(missing_ok=True)

    def first_boot_env(self, **extra: str) -> dict[str, str]:
        return self.environment(
            MICROMANCE_SKIP_VENV="0", PYTHON3=str(self.bin / "python3"),
            INSTALL_SCREEN=str(self.bin / "screen"), DTPARAM=str(self.bin / "dtparam"),
            MODPROBE=str(self.bin / "modprobe"), NET_CHECK=f"test -e {self.state}/online",
            NET_WAIT="0", **extra)

    def boot_up(self, command: str = "run", *args: str) -> subprocess.CompletedProcess:
        """The service's ExecStart (or enable), run from the card's copy of the script."""
        self.forget_calls()
        (self.state / "screen.log").unlink(missing_ok=True)
        return subprocess.run(["bash", str(self.boot / "micromance" / "firstboot.sh"), command,
                               *args], capture_output=True, text=True, timeout=120,
                              env=self.first_boot_env())

    def status(self) -> dict:
        return json.loads(self.path("/var/lib/micromance/firstboot.json").read_text())

    def screens(self) -> list[str]:
        log = self.state / "screen.log"
        return log.read_text().splitlines() if log.exists() else []

    def log(self) -> str:
        return self.path("/var/log/micromance-firstboot.log").read_text()


@pytest.fixture
def card(tmp_path) -> FirstBootPi:
    return FirstBootPi(tmp_path)


# --- what goes on the card -------------------------------------------------------------------


def test_image_files_hold_this_release_the_script_and_the_cloud_init_hook(card):
    folder = card.boot / "micromance"
    assert (card.boot / "vendor-data").read_text() == (FIRSTBOOT / "vendor-data").read_text()
    assert (folder / "firstboot.sh").read_bytes() == (FIRSTBOOT / "firstboot.sh").read_bytes()
    assert "wifi_portal=yes" in (folder / "firstboot.conf").read_text().splitlines()
    with tarfile.open(folder / f"micromance-{VERSION}.tar.gz") as archive:
        names = set(archive.getnames())
        mode = archive.getmember(f"micromance-{VERSION}/install.sh").mode
    for needed in ("install.sh", "pyproject.toml", "README.md", "systemd/micromance.service",
                   "firmware_config/comitup.conf", "firmware_config/boot-config.sh",
                   "device/micromance/install_screen.py"):
        assert f"micromance-{VERSION}/{needed}" in names, needed
    assert mode & 0o111, "install.sh must stay executable on a FAT card"
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)
    # A card without Imager's firstrun.sh keeps its cmdline.txt as it was.
    assert "systemd.run" not in (card.boot / "cmdline.txt").read_text()


def test_imagers_firstrun_gets_one_line_before_it_deletes_itself(tmp_path):
    boot = tmp_path / "bootfs"
    boot.mkdir()
    (boot / "cmdline.txt").write_text("console=tty1 root=PARTUUID=1234-02 rootwait "
                                      "systemd.run=/boot/firstrun.sh\n")
    imagers = ("#!/bin/sh\n\nset +e\n\n/usr/lib/userconf-pi/userconf 'sam' '$5$hash'\n"
               "rm -f /boot/firstrun.sh\nsed -i 's| systemd.run.*||g' /boot/cmdline.txt\n"
               "exit 0\n")
    (boot / "firstrun.sh").write_text(imagers)
    (boot / "vendor-data").write_text("#cloud-config\nbootcmd:\n  - [echo, mine]\n")
    cmdline = (boot / "cmdline.txt").read_text()

    result = subprocess.run([str(INSTALL), "--image-files", str(boot)], capture_output=True,
                            text=True, timeout=60, check=True)
    lines = (boot / "firstrun.sh").read_text().splitlines()
    hook = next(i for i, line in enumerate(lines) if "micromance/firstboot.sh" in line)
    assert lines[hook + 1] == "rm -f /boot/firstrun.sh"
    assert [line for line in lines if line != lines[hook]] == imagers.splitlines()
    assert (boot / "cmdline.txt").read_text() == cmdline
    # Someone else's vendor-data is kept, with what to add to it.
    assert (boot / "vendor-data").read_text().endswith("[echo, mine]\n")
    assert "keeping the vendor-data" in result.stdout

    subprocess.run([str(INSTALL), "--image-files", str(boot)], capture_output=True, text=True,
                   timeout=60, check=True)
    assert (boot / "firstrun.sh").read_text().count("micromance/firstboot.sh") == 1


def test_the_firstrun_hook_enables_the_service_as_firstrun_sh_would_call_it(card):
    """The hook line, run the way Imager's firstrun.sh runs (``$0`` is the script on the
    boot partition): it enables the service for the next boot and starts nothing."""
    firstrun = card.boot / "firstrun.sh"
    firstrun.write_text("#!/bin/sh\nrm -f /boot/firstrun.sh\nexit 0\n")
    subprocess.run([str(INSTALL), "--image-files", str(card.boot)], capture_output=True,
                   check=True, timeout=60)
    hook = next(line for line in firstrun.read_text().splitlines() if "micromance" in line)
    card.forget_calls()
    subprocess.run(["sh", "-c", hook, str(firstrun)], check=True, timeout=60,
                   env=card.first_boot_env())
    assert card.changes() == ["systemctl daemon-reload",
                              "systemctl enable micromance-firstboot.service"]
    assert card.path("/etc/systemd/system/micromance-firstboot.service").read_bytes() \
        == (FIRSTBOOT / "micromance-firstboot.service").read_bytes()
    assert os.access(card.path("/usr/local/sbin/micromance-firstboot"), os.X_OK)


def yaml_of(text: str) -> dict:
    """YAML read by the Python cloud-init runs on (its python3-yaml; the venv has none)."""
    require_cloud_init()
    read = "import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin.read())))"
    result = subprocess.run(["/usr/bin/python3", "-c", read], input=text, capture_output=True,
                            text=True, check=True, timeout=60)
    return json.loads(result.stdout)


def require_cloud_init() -> str:
    path = shutil.which("cloud-init")
    if path:
        return path
    missing = "cloud-init is not installed (apt-get install cloud-init; install.sh --dev does)"
    if running_in_ci():
        pytest.fail(f"{missing} (CI must check the cloud-init files)", pytrace=False)
    pytest.skip(missing)


#: What Raspberry Pi Imager 2 writes as user-data with a user, SSH and a host name set (the
#: shape of its CustomisationGenerator; the hash is a placeholder).
IMAGERS_USER_DATA = """#cloud-config
manage_resolv_conf: false

hostname: kitchen
manage_etc_hosts: true
packages:
- avahi-daemon
timezone: Europe/London
user:
  name: sam
  shell: /bin/bash
  lock_passwd: false
  passwd: "$6$placeholder$hash"
  sudo: null

ssh_pwauth: true
runcmd:
  - [ systemctl, enable, --now, ssh ]
"""


def test_cloud_init_accepts_our_vendor_data_and_it_leaves_imagers_user_data_whole(tmp_path):
    cloud_init = require_cloud_init()
    vendor = FIRSTBOOT / "vendor-data"
    user = tmp_path / "user-data"
    user.write_text(IMAGERS_USER_DATA)
    for path in (vendor, user):
        result = subprocess.run([cloud_init, "schema", "-c", str(path)], capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0 and "Valid cloud-config" in result.stdout, \
            result.stdout + result.stderr
    # cloud-init merges vendor-data under user-data key by key: ours must set no key that
    # Imager's user-data sets, or one would silently replace the other.
    ours, imagers = yaml_of(vendor.read_text()), yaml_of(IMAGERS_USER_DATA)
    assert set(ours) == {"bootcmd"} and not set(ours) & set(imagers)


def test_the_vendor_data_command_enables_and_starts_the_service(card):
    [command] = yaml_of((FIRSTBOOT / "vendor-data").read_text())["bootcmd"]
    line = command[2].replace("/boot/firmware/", f"{card.boot}/")
    card.forget_calls()
    subprocess.run([*command[:2], line], check=True, timeout=60, env=card.first_boot_env())
    assert card.changes() == ["systemctl daemon-reload",
                              "systemctl enable micromance-firstboot.service",
                              "systemctl start --no-block micromance-firstboot.service"]


# --- the first boot ----------------------------------------------------------------------------


def test_first_boot_installs_like_install_sh_reboots_once_and_never_again(card):
    result = card.boot_up()
    assert result.returncode == 0, result.stdout + result.stderr
    # What `sudo ./install.sh --wifi-portal` installs.
    assert card.path("/etc/micromance/config.toml").read_text() == EXAMPLE_CONFIG.read_text()
    assert card.path("/etc/comitup.conf").read_text() == COMITUP_TEMPLATE.read_text()
    assert card.path("/etc/systemd/system/micromance.service").exists()
    assert {"python3-lgpio", "comitup"} <= set((card.state / "packages").read_text().split())
    assert "dtparam i2c_arm=on" in card.calls() and "modprobe i2c-dev" in card.calls()
    changes = card.changes()
    assert "systemctl enable micromance.service" in changes
    assert changes[-2:] == ["systemctl disable micromance-firstboot.service",
                            "systemctl reboot --no-block"]
    status = card.status()
    assert status | {"updated": ""} == {
        "state": "rebooting", "step": 6, "total": 6, "what": "restarting once to switch I2C on",
        "ok": True, "error": "", "attempt": 1, "log": "/var/log/micromance-firstboot.log",
        "updated": ""}
    # The screen: nothing before the unit's Python packages (luma) exist, then every step.
    assert card.screens() == [
        "progress --title Installing --step 4 --total 6 --detail the config and the services",
        "progress --title Installing --step 5 --total 6 --detail the Wi-Fi hotspot (comitup)",
        "progress --title Installing --step 6 --total 6 --detail starting the unit",
        "progress --title Restarting --step 6 --total 6 --detail once, to finish"]
    log = card.log()
    for expected in ("step 1/6: the Debian packages", "step 3/6: the Python packages",
                     "installed; restarting once"):
        assert expected in log, expected
    assert (card.boot / "micromance" / "firstboot.log").read_text() == log

    after_reboot = card.boot_up()
    assert after_reboot.returncode == 0 and "already installed" in after_reboot.stdout
    assert not any(call.startswith(("apt-get", "python", "useradd")) for call in card.calls())
    assert card.changes() == ["systemctl disable micromance-firstboot.service"]
    assert card.screens() == []
    # cloud-init's bootcmd runs at every boot: once installed, it enables nothing again.
    assert card.boot_up("enable", "--now").returncode == 0 and card.changes() == []


def test_a_failure_half_way_says_why_and_the_next_boot_finishes(card):
    (card.state / "apt-offline").write_text("comitup")
    failed = card.boot_up()
    assert failed.returncode == 1
    status = card.status()
    assert (status["state"], status["step"], status["total"], status["ok"]) \
        == ("failed", 5, 6, False)
    assert status["what"] == "the Wi-Fi hotspot (comitup)"
    assert status["error"] == "no internet for the Wi-Fi hotspot (comitup)"
    log = card.log()
    assert "Failed to fetch comitup" in log
    assert "FAILED at step 5/6 (the Wi-Fi hotspot (comitup)): no internet" in log
    assert "tries again at the next power-on" in log
    assert (card.boot / "micromance" / "firstboot.log").read_text() == log
    assert card.screens()[-1] == (
        "problem --reason Install failed --detail No internet for the Wi-Fi hotspot (comitup)."
        " Tries again at power-on. Log on the SD card: micromance/firstboot.log")
    assert "systemctl disable micromance-firstboot.service" not in card.changes()
    assert not card.path("/var/lib/micromance/firstboot.done").exists()
    [line] = firstboot_lines(card.path("/var/lib/micromance"))
    assert line["outcome"] == "fail" and "step 5/6" in line["message"]
    assert "next power-on" in line["fix"] and "/var/log/micromance-firstboot.log" in line["fix"]

    (card.state / "apt-offline").unlink()
    card.online()
    retried = card.boot_up()
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert card.status()["state"] == "rebooting" and card.status()["attempt"] == 2
    assert "comitup" in (card.state / "packages").read_text().split()
    # The first attempt's packages are there: the second asks apt only for what is missing.
    assert [call for call in card.calls() if call.startswith("apt-get install")] \
        == ["apt-get install -y -qq --no-install-recommends comitup"]
    assert "attempt 1" in card.log() and "attempt 2" in card.log()


def test_without_internet_it_waits_then_says_so_and_the_screen_stays_dark(card):
    card.online(False)
    result = card.boot_up()
    assert result.returncode == 1
    status = card.status()
    assert status["state"] == "failed" and status["step"] == 0
    assert status["error"].startswith("no internet: set the Wi-Fi in Raspberry Pi Imager")
    assert not any(call.startswith("apt-get") for call in card.calls())
    assert card.screens() == []  # no venv yet, so no luma to draw with


def test_a_card_without_the_release_says_so(card):
    next((card.boot / "micromance").glob("micromance-*.tar.gz")).unlink()
    result = card.boot_up()
    assert result.returncode == 1
    assert "has no micromance-<version>.tar.gz" in card.status()["error"]


def test_wifi_portal_no_in_firstboot_conf_leaves_comitup_out(card):
    (card.boot / "micromance" / "firstboot.conf").write_text("wifi_portal=no\n")
    assert card.boot_up().returncode == 0
    assert card.status()["total"] == 5
    assert "comitup" not in (card.state / "packages").read_text().split()


# --- install.sh's side ---------------------------------------------------------------------------


def test_install_sh_reports_each_step_to_the_progress_hook(tmp_path):
    pi = FakePi(tmp_path)
    hook = script(tmp_path / "hook", '#!/bin/sh\necho "$*" >> "$FAKE_STATE/progress"\n')
    pi.install("--wifi-portal", MICROMANCE_PROGRESS=str(hook))
    assert (pi.state / "progress").read_text().splitlines() == [
        "1 6 the Debian packages", "2 6 I2C and the service user", "3 6 the Python packages",
        "4 6 the config and the services", "5 6 the Wi-Fi hotspot (comitup)",
        "6 6 starting the unit", "done reboot"]
    pi.after_reboot()
    (pi.state / "progress").unlink()
    pi.install(MICROMANCE_PROGRESS=str(hook), MICROMANCE_START_NO_BLOCK="1")
    assert (pi.state / "progress").read_text().splitlines()[-1] == "done ready"
    assert pi.changes() == ["systemctl start --no-block micromance.service",
                            "systemctl start --no-block micromance-web.socket"]


def test_image_files_dry_run_writes_nothing(tmp_path):
    result = subprocess.run([str(INSTALL), "--image-files", str(tmp_path), "--dry-run"],
                            capture_output=True, text=True, timeout=60, check=True)
    assert "would write" in result.stdout and list(tmp_path.iterdir()) == []


def test_ref_goes_only_with_release_archive(tmp_path):
    result = subprocess.run([str(INSTALL), "--ref", "v1"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1 and "--ref only goes with --release-archive" in result.stderr


def test_a_release_archive_brings_the_wheel_and_the_card_installs_it(tmp_path):
    """git archive of a tag plus the wheel built from it (~6 s: pip builds the wheel)."""
    checkout = tmp_path / "checkout"
    for path in ("install.sh", "pyproject.toml", "README.md", "firmware_config", "systemd",
                 "device/micromance"):
        source, target = ROOT / path, checkout / path
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    git = ["git", "-C", str(checkout), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "release"],
                 ["tag", f"v{VERSION}"]):
        subprocess.run(git + args, check=True, capture_output=True, timeout=60)
    out = tmp_path / "out"
    python = str(ROOT / ".venv" / "bin" / "python")
    result = subprocess.run([str(checkout / "install.sh"), "--release-archive", str(out),
                             "--ref", f"v{VERSION}"], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "PYTHON3": python})
    assert result.returncode == 0, result.stdout + result.stderr
    archive = out / f"micromance-{VERSION}.tar.gz"
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        tar.extractall(tmp_path / "release", filter="tar")
    wheel = f"micromance-{VERSION}/wheels/micromance-{VERSION}-py3-none-any.whl"
    assert wheel in names and f"micromance-{VERSION}/install.sh" in names
    assert not any("/build/" in name or ".egg-info" in name for name in names)

    release = tmp_path / "release" / f"micromance-{VERSION}"
    card = tmp_path / "card"
    card.mkdir()
    subprocess.run([str(release / "install.sh"), "--image-files", str(card)], check=True,
                   capture_output=True, timeout=60)
    with tarfile.open(card / "micromance" / f"micromance-{VERSION}.tar.gz") as tar:
        assert wheel in tar.getnames()
    pi = FakePi(tmp_path, release / "install.sh")
    dry = pi.install("--dry-run", MICROMANCE_SKIP_VENV="0", PYTHON3=python)
    assert f"pip install {release}/wheels/micromance-{VERSION}-py3-none-any.whl" in dry.stdout


# --- the screen and the Check line ---------------------------------------------------------------


@pytest.mark.parametrize("height", [64, 32])
def test_install_screen_draws_on_the_configured_display(tmp_path, height):
    config = tmp_path / "config.toml"
    config.write_text(f'[display]\ndriver = "dummy"\nheight = {height}\n')
    saved = tmp_path / "frame.png"
    assert install_screen(["--config", str(config), "--save", str(saved), "progress",
                           "--step", "3", "--total", "6", "--detail", "the Python packages"]) == 0
    expected = render(Frame(ProgressView("Installing", 3, 6, "the Python packages")), 128,
                      height)
    assert ImageChops.difference(Image.open(saved).convert("1"), expected).getbbox() is None
    assert install_screen(["--config", str(config), "--save", str(saved), "problem",
                           "--reason", "Install failed", "--detail", "No internet"]) == 0
    expected = render(Frame(ProblemView("Install failed", "No internet")), 128, height)
    assert ImageChops.difference(Image.open(saved).convert("1"), expected).getbbox() is None


def test_install_screen_without_a_display_says_so_in_one_line(tmp_path, capsys):
    config = tmp_path / "config.toml"
    config.write_text('[display]\ni2c_port = 250\n')
    assert install_screen(["--config", str(config), "progress", "--step", "1",
                           "--total", "2"]) == 69
    err = capsys.readouterr().err
    assert err.startswith("micromance: ") and "Traceback" not in err and len(err.splitlines()) == 1


def test_check_line_for_each_state(tmp_path):
    assert firstboot_lines(tmp_path) == []
    status = tmp_path / "firstboot.json"
    for state, outcome in (("installing", "warn"), ("rebooting", "pass"), ("done", "pass"),
                           ("failed", "fail")):
        status.write_text(json.dumps({"state": state, "step": 3, "total": 6,
                                      "what": "the Python packages", "error": "no internet",
                                      "attempt": 1, "updated": "2025-01-01T00:00:00Z"}))
        [line] = firstboot_lines(tmp_path)
        assert line["outcome"] == outcome and line["name"] == "first boot", state
    status.write_text("{not json")
    [line] = firstboot_lines(tmp_path)
    assert line["outcome"] == "warn" and str(status) in line["message"]
