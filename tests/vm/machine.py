"""Boot the lab VM, run one shell command in it, power off, hand back status and output.

The guest sees this machine's whole root read-only (virtio-9p) under a tmpfs overlay,
so the repository and its ``.venv`` are at their host paths (also a clone under /tmp,
which the guest mounts afresh: init.sh overlays the working directory again); writes
stay in guest memory. A second 9p share is the run's result directory (``/lab/out`` inside,
``$LAB_OUT`` for the command): logs, captures and reports written there are on the
host afterwards. QEMU always ends: the guest powers off after the command, and on a
timeout or any error here QEMU is killed by its PID.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from tests.vm.image import INSTALL_HINT, BootImage, LabUnavailable, boot_image

QEMU = "qemu-system-x86_64"
GUEST_OUT = "/lab/out"
#: The line init.sh prints right before the command starts.
COMMAND_START_MARK = b"lab-init: running the command"
#: Exit status reported when the guest never recorded one (crash, timeout).
NO_STATUS = -1
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: A minimal firmware that starts the kernel about a second sooner than SeaBIOS and
#: prints nothing on the console (part of Debian's qemu-system-data).
QBOOT = Path("/usr/share/qemu/qboot.rom")


@dataclass(frozen=True)
class VmSettings:
    cpus: int = field(default_factory=lambda: min(os.cpu_count() or 1, 2))
    memory_mb: int = 2048
    timeout: float = 900.0


@dataclass
class LabRun:
    """What one VM run produced."""

    status: int  # the command's exit status, NO_STATUS when the guest did not finish
    console: str  # everything the guest printed on its console (kernel, init, the command)
    out_dir: Path
    boot_seconds: float | None  # QEMU start to the command's start
    total_seconds: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.status == 0


def qemu_binary() -> str:
    path = shutil.which(QEMU)
    if path is None:
        raise LabUnavailable(f"QEMU is not installed ({QEMU} not found); {INSTALL_HINT}")
    return path


def hardware_kvm() -> bool:
    """True only for real hardware virtualisation.

    A ``/dev/kvm`` can exist without it (a page-table based KVM variant that an
    unmodified kernel dies on); kvm_intel or kvm_amd being loaded is the sign.
    """
    loaded = any(Path("/sys/module", name).is_dir() for name in ("kvm_intel", "kvm_amd"))
    return loaded and os.access("/dev/kvm", os.R_OK | os.W_OK)


def qemu_command(image: BootImage, out_dir: Path, settings: VmSettings) -> list[str]:
    if hardware_kvm():
        accel = ["-accel", "kvm", "-cpu", "host"]
    else:
        # -cpu max: the default model lacks instructions numpy's wheels use (SIGILL).
        accel = ["-accel", "tcg,thread=multi", "-cpu", "max"]
    firmware = ["-bios", str(QBOOT)] if QBOOT.is_file() else []
    return [
        qemu_binary(),
        *accel,
        *firmware,
        "-machine", "pc",
        "-smp", str(settings.cpus),
        "-m", str(settings.memory_mb),
        "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
        "-serial", "stdio",
        "-monitor", "none",
        "-kernel", str(image.vmlinux),
        "-initrd", str(image.initramfs),
        "-append", "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init",
        "-fsdev", "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap",
        "-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
        "-fsdev", f"local,id=labout,path={out_dir},security_model=none",
        "-device", "virtio-9p-pci,fsdev=labout,mount_tag=labout",
    ]  # fmt: skip


#: Guest mount points with fresh file systems: the host's files under them are hidden.
GUEST_FRESH_DIRS = (Path("/tmp"), Path("/run"), Path("/dev"))


def hidden_in_guest(path: Path) -> bool:
    """Is ``path`` under a directory the guest mounts afresh (init.sh then mounts it
    again from the host, as its own overlay: a clone in /tmp still runs in the lab)?"""
    resolved = path.resolve()
    return any(resolved.is_relative_to(fresh) for fresh in GUEST_FRESH_DIRS)


def job_script(
    command: str,
    cwd: Path,
    env: Mapping[str, str],
    *,
    prelude: str = "",
    interactive: bool = False,
) -> str:
    """The shell script the guest runs (busybox sh, chrooted into the overlay root).

    ``prelude`` is shell code run first (it may change files: they are in guest memory).
    """
    variables = {
        "PATH": GUEST_PATH,
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "TERM": os.environ.get("TERM", "vt100") if interactive else "dumb",
        "LAB_OUT": GUEST_OUT,
        "RSERPOOL_SCTP_LAB": "1",
        **env,
    }
    lines = ["# written by tests/vm/machine.py", "set -e", prelude]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in variables.items()]
    lines += [f"cd {shlex.quote(str(cwd))}", "set +e"]
    if interactive:
        # A session leader with the console as controlling terminal, so Ctrl-C works.
        lines.append(f"exec /lab/busybox setsid -c /bin/sh -c {shlex.quote(command)}")
    else:
        lines.append(f"exec /bin/sh -c {shlex.quote(command)} </dev/null")
    return "\n".join(lines) + "\n"


def run_in_vm(
    command: str,
    *,
    out_dir: Path,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    settings: VmSettings | None = None,
    prelude: str = "",
    echo: BinaryIO | None = None,
    interactive: bool = False,
) -> LabRun:
    """Boot, run ``command`` with ``/bin/sh -c`` in ``cwd``, power off.

    ``echo`` receives the console output as it arrives (for a user watching);
    ``interactive`` connects the guest console to this terminal instead.
    Raises :class:`LabUnavailable` when QEMU, the kernel or busybox is missing.
    """
    settings = settings or VmSettings()
    image = boot_image()
    out_dir = out_dir.resolve()
    control = out_dir / ".lab"
    control.mkdir(parents=True, exist_ok=True)
    (control / "status").unlink(missing_ok=True)
    workdir = control / "workdir"
    workdir.unlink(missing_ok=True)
    if hidden_in_guest(cwd):
        workdir.write_text(f"{cwd.resolve()}\n")
    (control / "job.sh").write_text(
        job_script(command, cwd, env or {}, prelude=prelude, interactive=interactive)
    )
    argv = qemu_command(image, out_dir, settings)
    started = time.monotonic()
    console = bytearray()
    marks: list[float] = []
    timed_out = False
    if interactive:
        proc = subprocess.Popen(argv)
    else:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    reader = None
    live_log = open(control / "console.log", "wb")  # noqa: SIM115 - closed below
    if proc.stdout is not None:
        sinks = [live_log] if echo is None else [live_log, echo]
        reader = threading.Thread(
            target=_pump, args=(proc.stdout, console, sinks, marks), daemon=True
        )
        reader.start()
    try:
        proc.wait(timeout=settings.timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        if proc.poll() is None:
            proc.kill()  # by PID: this QEMU and nothing else
            proc.wait()
        if reader is not None:
            reader.join(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()
        live_log.close()
    text = console.decode(errors="replace")
    return LabRun(
        status=_read_status(control / "status"),
        console=text,
        out_dir=out_dir,
        boot_seconds=marks[0] - started if marks else None,
        total_seconds=time.monotonic() - started,
        timed_out=timed_out,
    )


def _pump(stream: BinaryIO, console: bytearray, sinks: list[BinaryIO], marks: list[float]) -> None:
    """Copy the console to ``console`` and ``sinks`` as it arrives (``.lab/console.log``
    can be followed during a run); note when the command starts."""
    for line in iter(stream.readline, b""):
        if not marks and COMMAND_START_MARK in line:
            marks.append(time.monotonic())
        console += line
        for sink in sinks:
            sink.write(line)
            sink.flush()


def _read_status(path: Path) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return NO_STATUS


def describe_failure(run: LabRun, tail_lines: int = 40) -> str:
    """One paragraph on why a run did not succeed, with the end of the console."""
    if run.timed_out:
        head = f"the lab VM did not finish within {run.total_seconds:.0f} s and was killed"
    elif run.status == NO_STATUS:
        head = "the lab VM stopped without the command's exit status"
    else:
        head = f"the command exited with status {run.status} in the lab VM"
    if tail_lines <= 0:
        return head
    tail = "\n".join(run.console.splitlines()[-tail_lines:])
    return f"{head}; console (last {tail_lines} lines):\n{tail}"
