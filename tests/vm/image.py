"""The lab VM's boot files: an uncompressed kernel and a tiny initramfs, built once and cached.

Inputs come from the host's packages: Debian's kernel (``/boot/vmlinuz-VERSION`` with
its modules in ``/lib/modules/VERSION``, package ``linux-image-amd64``) and a static
busybox (``busybox-static``). The kernel is unpacked to its ELF ``vmlinux`` so QEMU
starts it through the PVH entry point and the guest skips decompressing itself
(seconds under emulation). The initramfs holds busybox, ``init.sh`` as ``/init`` and
the modules needed to mount the host's root (virtio, 9p, overlay) and to speak SCTP
(plus dummy and veth for test networks), loaded in dependency order.

Built files live in ``$XDG_CACHE_HOME/rserpool-sctp-lab`` (``~/.cache`` by default),
named by a digest of every input, so a kernel update or an edited ``init.sh`` builds
anew and parallel runs share one build (older builds stay until the cache is removed;
each is about 70 MB).
"""

from __future__ import annotations

import hashlib
import io
import lzma
import os
import re
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from tests.vm.cpio import CpioWriter

INIT_SCRIPT = Path(__file__).with_name("init.sh")

#: Modules the guest loads at boot (their dependencies are added from modules.dep).
BOOT_MODULES: tuple[str, ...] = (
    "virtio_pci", "9pnet_virtio", "9p", "overlay",  # the host's root over virtio-9p
    "sctp",  # the point of the lab
    "dummy", "veth",  # extra addresses and links for multi-homing tests
    "bridge",  # the control center's virtual hosts (network namespaces on one bridge)
)  # fmt: skip

#: ``softdep ... pre:`` entries that modules.dep does not list but loading needs.
SOFT_DEPENDENCIES: dict[str, tuple[str, ...]] = {"libcrc32c": ("crc32c_generic",)}

#: The busybox applets init.sh calls by name.
INIT_APPLETS = (
    "sh", "mount", "umount", "insmod", "mkdir", "cp", "chroot", "ip", "hostname", "reboot",
    "sync", "sleep",
)  # fmt: skip
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
LAYOUT_VERSION = "1"  # bump when the image layout changes in a way the inputs do not show

INSTALL_HINT = "as root: apt-get install qemu-system-x86 linux-image-amd64 busybox-static"


class LabUnavailable(Exception):
    """The lab cannot run on this machine; the message says what is missing."""


@dataclass(frozen=True)
class KernelFiles:
    version: str
    vmlinuz: Path
    modules: Path  # /lib/modules/VERSION


@dataclass(frozen=True)
class BootImage:
    kernel_version: str
    vmlinux: Path
    initramfs: Path


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rserpool-sctp-lab"


def find_kernel(boot: Path = Path("/boot"), modules: Path = Path("/lib/modules")) -> KernelFiles:
    """The newest installed kernel that has its modules and an SCTP module.

    ``RSERPOOL_LAB_KERNEL=/boot/vmlinuz-VERSION`` picks one explicitly.
    """
    chosen = os.environ.get("RSERPOOL_LAB_KERNEL")
    images = [Path(chosen)] if chosen else sorted(boot.glob("vmlinuz-*"), key=_version_key)
    if not images:
        raise LabUnavailable(f"no kernel in {boot} (vmlinuz-*); {INSTALL_HINT}")
    reasons = []
    for image in reversed(images):
        version = image.name.removeprefix("vmlinuz-")
        moddir = modules / version
        if not image.is_file():
            reasons.append(f"{image} does not exist")
        elif not (moddir / "modules.dep").is_file():
            reasons.append(f"{image}: no modules in {moddir}")
        elif "kernel/net/sctp/sctp.ko" not in (moddir / "modules.dep").read_text():
            reasons.append(f"{image}: no SCTP module (sctp.ko) in {moddir}")
        else:
            return KernelFiles(version, image, moddir)
    raise LabUnavailable("no usable kernel: " + "; ".join(reasons) + f"; {INSTALL_HINT}")


def _version_key(path: Path) -> list[int | str]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def find_busybox() -> Path:
    for candidate in BUSYBOX_CANDIDATES:
        path = Path(candidate)
        if path.is_file() and _is_static_elf(path):
            return path
    raise LabUnavailable(f"no static busybox ({' or '.join(BUSYBOX_CANDIDATES)}); {INSTALL_HINT}")


def _is_static_elf(path: Path) -> bool:
    # A dynamic executable has a PT_INTERP program header naming its loader; the string
    # is in the first few kilobytes. The static busybox must run before any root exists.
    head = path.read_bytes()[:4096]
    return head.startswith(b"\x7fELF") and b"ld-linux" not in head


def module_load_order(moddir: Path, wanted: tuple[str, ...] = BOOT_MODULES) -> list[str]:
    """Module paths (relative to ``moddir``, without ``.ko``), dependencies first."""
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in (moddir / "modules.dep").read_text().splitlines():
        target, _, needed = line.partition(":")
        if not target.endswith(".ko"):
            continue  # compressed modules (.ko.xz, .ko.zst) would need unpacking first
        deps[target] = needed.split()
        by_name[_module_name(target)] = target
    builtin = {_module_name(line) for line in _read_lines(moddir / "modules.builtin")}
    order: list[str] = []

    def visit(name: str) -> None:
        if name in builtin:
            return
        if name not in by_name:
            raise LabUnavailable(f"kernel module {name} is missing from {moddir}")
        path = by_name[name]
        if path.removesuffix(".ko") in order:
            return
        for soft in SOFT_DEPENDENCIES.get(name, ()):
            visit(soft)
        for dep in deps[path]:
            visit(_module_name(dep))
        order.append(path.removesuffix(".ko"))

    for name in wanted:
        visit(name)
    return order


def _module_name(path: str) -> str:
    # File names use "-" or "_" interchangeably (crc32c-intel.ko is module crc32c_intel).
    return Path(path).name.split(".ko")[0].replace("-", "_")


def _read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.is_file() else []


def extract_vmlinux(vmlinuz: bytes) -> bytes:
    """The ELF kernel inside a compressed bzImage (xz or gzip, as distributions ship)."""
    for magic, unpack in ((b"\xfd7zXZ\x00", _unxz), (b"\x1f\x8b\x08\x00", _gunzip)):
        start = vmlinuz.find(magic)
        while start >= 0:
            try:
                elf = unpack(vmlinuz[start:])
            except (lzma.LZMAError, zlib.error, EOFError):
                elf = b""
            if elf.startswith(b"\x7fELF"):
                return elf
            start = vmlinuz.find(magic, start + 1)
    raise LabUnavailable("cannot unpack the kernel image (neither xz nor gzip inside)")


def _unxz(data: bytes) -> bytes:
    return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data)


def _gunzip(data: bytes) -> bytes:
    return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data)


def build_initramfs(kernel: KernelFiles, busybox: Path, modules: list[str]) -> bytes:
    out = io.BytesIO()
    archive = CpioWriter(out)
    for directory in ("bin", "dev", "proc", "sys", "lower", "upper", "newroot", "lib"):
        archive.directory(directory)
    archive.directory("lib/modules")
    archive.char_device("dev/console", 5, 1)  # the kernel opens it before devtmpfs exists
    archive.file("bin/busybox", busybox.read_bytes(), 0o755)
    for applet in INIT_APPLETS:
        archive.symlink(f"bin/{applet}", "busybox")
    archive.file("init", INIT_SCRIPT.read_bytes(), 0o755)
    names = []
    for module in modules:
        name = Path(module).name
        archive.file(f"lib/modules/{name}.ko", (kernel.modules / f"{module}.ko").read_bytes())
        names.append(name)
    archive.file("modules.list", ("\n".join(names) + "\n").encode())
    archive.finish()
    return out.getvalue()


def _digest(kernel: KernelFiles, busybox: Path, modules: list[str]) -> str:
    h = hashlib.sha256(LAYOUT_VERSION.encode())
    h.update(INIT_SCRIPT.read_bytes())
    for path in (kernel.vmlinuz, busybox, kernel.modules / "modules.dep"):
        info = path.stat()
        h.update(f"{path}:{info.st_size}:{info.st_mtime_ns}\n".encode())
    h.update("\n".join(modules).encode())
    return h.hexdigest()[:16]


def _write_atomically(path: Path, data: bytes) -> None:
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, prefix=".tmp-") as tmp:
        tmp.write(data)
    os.replace(tmp.name, path)


def boot_image(cache: Path | None = None) -> BootImage:
    """The cached kernel and initramfs for this host, building them when missing."""
    kernel = find_kernel()
    busybox = find_busybox()
    modules = module_load_order(kernel.modules)
    directory = (cache or cache_root()) / f"{kernel.version}-{_digest(kernel, busybox, modules)}"
    image = BootImage(kernel.version, directory / "vmlinux", directory / "initramfs.cpio")
    if image.vmlinux.is_file() and image.initramfs.is_file():
        return image
    directory.mkdir(parents=True, exist_ok=True)
    _write_atomically(image.initramfs, build_initramfs(kernel, busybox, modules))
    _write_atomically(image.vmlinux, extract_vmlinux(kernel.vmlinuz.read_bytes()))
    return image
