"""The lab's pieces that need no VM: the initramfs archive, module order, kernel
unpacking, the job script and the clear errors when something is missing."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.vm.cpio import CpioWriter
from tests.vm.guest import fast_python_prelude
from tests.vm.image import LabUnavailable, extract_vmlinux, find_kernel, module_load_order
from tests.vm.machine import hidden_in_guest, job_script


@pytest.mark.skipif(shutil.which("cpio") is None, reason="cpio(1) is not installed")
def test_the_archive_unpacks_with_cpio(tmp_path: Path) -> None:
    out = io.BytesIO()
    archive = CpioWriter(out)
    archive.directory("bin")
    archive.file("bin/tool", b"#!/bin/sh\necho hi\n", 0o755)
    archive.symlink("bin/alias", "tool")
    archive.file("odd-length", b"12345")
    archive.finish()
    assert len(out.getvalue()) % 512 == 0
    subprocess.run(["cpio", "-idm", "--quiet"], input=out.getvalue(), cwd=tmp_path, check=True)
    assert (tmp_path / "bin" / "tool").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert os.access(tmp_path / "bin" / "tool", os.X_OK)
    assert os.readlink(tmp_path / "bin" / "alias") == "tool"
    assert (tmp_path / "odd-length").read_bytes() == b"12345"


def test_modules_load_after_their_dependencies(tmp_path: Path) -> None:
    (tmp_path / "modules.dep").write_text(
        "kernel/net/sctp/sctp.ko: kernel/lib/libcrc32c.ko kernel/net/udp_tunnel.ko\n"
        "kernel/lib/libcrc32c.ko:\n"
        "kernel/crypto/crc32c_generic.ko:\n"
        "kernel/net/udp_tunnel.ko:\n"
        "kernel/drivers/net/dummy.ko:\n"
    )
    (tmp_path / "modules.builtin").write_text("kernel/fs/overlayfs/overlay.ko\n")
    order = module_load_order(tmp_path, ("sctp", "overlay", "dummy"))
    assert order == [
        "kernel/crypto/crc32c_generic",  # libcrc32c's soft dependency
        "kernel/lib/libcrc32c",
        "kernel/net/udp_tunnel",
        "kernel/net/sctp/sctp",
        "kernel/drivers/net/dummy",
    ]
    with pytest.raises(LabUnavailable, match="veth is missing"):
        module_load_order(tmp_path, ("veth",))


def test_the_elf_kernel_is_found_inside_a_compressed_image() -> None:
    elf = b"\x7fELF" + bytes(range(256)) * 40
    image = b"MZ boot sector and setup code" + gzip.compress(elf, mtime=0) + b"trailer"
    assert extract_vmlinux(image) == elf
    with pytest.raises(LabUnavailable, match="cannot unpack"):
        extract_vmlinux(b"no kernel in here")


def test_a_missing_kernel_names_the_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RSERPOOL_LAB_KERNEL", raising=False)
    with pytest.raises(LabUnavailable, match=r"apt-get install .*linux-image-amd64"):
        find_kernel(boot=tmp_path, modules=tmp_path)
    (tmp_path / "vmlinuz-9.9.9").write_bytes(b"x")
    with pytest.raises(LabUnavailable, match="no modules in"):
        find_kernel(boot=tmp_path, modules=tmp_path)


def test_the_job_script_runs_the_command_quoted_in_its_directory(tmp_path: Path) -> None:
    script = job_script(
        'printf \'%s|%s|%s\' "$PWD" "$LAB_OUT" "$GREETING"',
        tmp_path,
        {"GREETING": "it's a 'quoted' $value"},
    )
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=10)
    assert done.stdout == f"{tmp_path}|/lab/out|it's a 'quoted' $value"


def test_a_working_directory_the_guest_mounts_afresh_is_brought_back() -> None:
    # The guest has its own /tmp and /run: a clone there must be overlaid again.
    assert hidden_in_guest(Path("/tmp/clone"))
    assert hidden_in_guest(Path("/run/user/0/work"))
    assert not hidden_in_guest(Path("/home/user/rserpool"))
    assert not hidden_in_guest(Path("/tmpfiles/repo"))


def test_the_python_prelude_only_replaces_a_hook_into_the_repository(tmp_path: Path) -> None:
    site = tmp_path / ".venv" / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (site / "__editable__.pkg-1.0.pth").write_text("import finder\n")
    finder = site / "__editable___pkg_1_0_finder.py"
    finder.write_text(f"MAPPING: dict[str, str] = {{'pkg': '{tmp_path}/pkg'}}\n")
    prelude = fast_python_prelude(tmp_path)
    assert str(site / "__editable__.pkg-1.0.pth") in prelude
    finder.write_text("MAPPING: dict[str, str] = {'pkg': '/elsewhere/pkg'}\n")
    assert fast_python_prelude(tmp_path) == ""
