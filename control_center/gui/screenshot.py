"""Screenshots of the window and of the map, small enough for documentation."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QWidget

#: Images for the README stay below this size; bigger ones are reduced to a palette.
MAX_BYTES = 300_000


def save_image(image: QImage, path: str | Path, *, max_bytes: int | None = None) -> Path:
    """Save ``image`` as PNG; with ``max_bytes``, fall back to 256 colours, then to scaling."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    saved = image.save(str(path), "PNG")  # type: ignore[call-overload]
    if not saved:
        raise OSError(f"cannot write {path}")
    if max_bytes is None or path.stat().st_size <= max_bytes:
        return path
    reduced = image.convertToFormat(
        QImage.Format.Format_Indexed8,
        Qt.ImageConversionFlag.ColorOnly | Qt.ImageConversionFlag.DiffuseDither,
    )
    reduced.save(str(path), "PNG")  # type: ignore[call-overload]
    while path.stat().st_size > max_bytes and reduced.width() > 400:
        smaller = image.scaledToWidth(
            int(reduced.width() * 0.85), Qt.TransformationMode.SmoothTransformation
        )
        reduced = smaller.convertToFormat(
            QImage.Format.Format_Indexed8,
            Qt.ImageConversionFlag.ColorOnly | Qt.ImageConversionFlag.DiffuseDither,
        )
        reduced.save(str(path), "PNG")  # type: ignore[call-overload]
    return path


def save_widget(widget: QWidget, path: str | Path, *, max_bytes: int | None = None) -> Path:
    """What ``widget`` shows right now (works offscreen too)."""
    return save_image(widget.grab().toImage(), path, max_bytes=max_bytes)
