"""What the lab's guest needs from the repository: its venv on PATH and a cheap Python start.

Code in the VM runs 10-25 times slower than here, and the test suite starts hundreds
of Python processes, so every fixed start-up cost counts:

- the venv's ``python`` is called directly (``.venv/bin`` first on PATH); it links to
  the real interpreter, never to a version-manager shim that costs seconds;
- :func:`prepare_host` compiles the repository's modules here before the VM starts,
  so the guest finds current bytecode instead of compiling (its writes would only
  land in guest memory and be lost);
- :func:`fast_python_prelude` replaces, in the guest's memory only, the venv's
  editable-install hook (a ``.pth`` that imports pathlib, urllib and a meta-path
  finder in every process) with the repository path, which maps the same packages.
"""

from __future__ import annotations

import compileall
import re
import shlex
from pathlib import Path

from tests.vm.machine import GUEST_PATH

PACKAGES = ("rsplib", "fractal_pe", "fractal_pu", "control_center", "tests", "bench")
MAPPING_RE = re.compile(r"^MAPPING\b.*?=\s*(\{.*\})\s*$", re.MULTILINE)


#: Tests in the guest wait this many times longer for processes to start and finish
#: (tests.support.SLOWDOWN), and each may take this long (pytest-timeout's variable).
GUEST_TEST_SETTINGS = {"RSERPOOL_TEST_SLOWDOWN": "5", "PYTEST_TIMEOUT": "600"}


def guest_environment(repo: Path) -> dict[str, str]:
    env = dict(GUEST_TEST_SETTINGS)
    venv = repo / ".venv"
    if (venv / "bin" / "python").exists():
        env |= {"PATH": f"{venv}/bin:{GUEST_PATH}", "VIRTUAL_ENV": str(venv)}
    return env


def prepare_host(repo: Path) -> None:
    """Bring the repository's bytecode up to date (quietly; fast when nothing changed)."""
    for package in PACKAGES:
        if (repo / package).is_dir():
            compileall.compile_dir(repo / package, quiet=2, workers=1)


def fast_python_prelude(repo: Path) -> str:
    """Shell lines for the guest that swap the editable-install hook for a path entry.

    Only when the hook maps every package into ``repo`` itself, so the plain path
    entry finds exactly the same modules; otherwise nothing changes.
    """
    lines = []
    for site in sorted((repo / ".venv" / "lib").glob("python3*/site-packages")):
        for finder in site.glob("__editable___*_finder.py"):
            match = MAPPING_RE.search(finder.read_text())
            if not match or not _maps_into(match.group(1), repo):
                continue
            for pth in site.glob("__editable__*.pth"):
                lines.append(f"printf '%s\\n' {shlex.quote(str(repo))} > {shlex.quote(str(pth))}")
        precedence = site / "distutils-precedence.pth"
        if precedence.exists():
            lines.append(f": > {shlex.quote(str(precedence))}")
    return "\n".join(lines)


def _maps_into(mapping_text: str, repo: Path) -> bool:
    targets = re.findall(r"'([^']+)':\s*'([^']+)'", mapping_text)
    return bool(targets) and all(Path(path) == repo / name for name, path in targets)
