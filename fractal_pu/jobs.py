"""Which parameter file the pool user draws next: rsplib's random pick, or a playlist.

rsplib picks one ``.fsf`` file uniformly at random (with replacement) per
image; ``playlist`` goes through the files in order and starts over at the
end, for a repeatable demo. A file that cannot be read is logged and skipped;
without any usable file the pool user draws rsplib's default parameters.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from pathlib import Path

from fractal_pu.fsf import DEFAULT_JOB, FractalJob, FsfError, find_fsf_files, read_fsf

log = logging.getLogger("fractal_pu")

#: The parameter files shipped with the project (own regions, rsplib's format).
BUNDLED_FSF_DIR = Path(__file__).resolve().parents[1] / "assets" / "fsf"


def collect_fsf(paths: Sequence[Path]) -> list[Path]:
    """Files given directly, plus the ``*.fsf`` of every directory given (sorted)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(find_fsf_files(path))
        else:
            found.append(path)
    return found


class JobSource:
    """The parameter files to draw from, and which one comes next."""

    def __init__(
        self, files: Sequence[Path], *, playlist: bool, rng: random.Random | None = None
    ) -> None:
        self.files = list(files)
        self.playlist = playlist
        self.rng = rng or random.Random()
        self._position = 0

    @classmethod
    def from_paths(
        cls, paths: Sequence[Path], *, playlist: bool, seed: int | None = None
    ) -> JobSource:
        """Files and directories as given, else the bundled parameter files."""
        if paths:
            files = collect_fsf(paths)
        elif BUNDLED_FSF_DIR.is_dir():
            files = find_fsf_files(BUNDLED_FSF_DIR)
        else:
            files = []
        return cls(files, playlist=playlist, rng=random.Random(seed))

    def _pick(self) -> Path:
        if self.playlist:
            path = self.files[self._position % len(self.files)]
            self._position += 1
            return path
        return self.rng.choice(self.files)

    def next(self) -> tuple[str | None, FractalJob]:
        """(file name or None, job) for the next image."""
        for _attempt in range(max(1, len(self.files))):
            if not self.files:
                break
            path = self._pick()
            try:
                return path.name, read_fsf(path)
            except FsfError as exc:
                log.warning("skipping a parameter file: %s", exc)
        return None, DEFAULT_JOB
