"""Node icons: the project's own SVGs in ``assets/icons``, rendered once per size."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

ASSETS = Path(__file__).resolve().parents[2] / "assets"
ICON_DIR = ASSETS / "icons"
#: Icon families; anything else (a plain ``command`` component) uses the PE look.
KINDS = ("registrar", "pool-element", "pool-user")
STATES = ("active", "inactive", "hung", "unplugged")
ICON_ASPECT = 84 / 96  # height / width of the SVG view boxes

_renderers: dict[tuple[str, str], QSvgRenderer] = {}
_pixmaps: dict[tuple[str, str, int], QPixmap] = {}


def icon_path(kind: str, state: str) -> Path:
    family = kind if kind in KINDS else "pool-element"
    return ICON_DIR / f"{family}-{state}.svg"


def renderer(kind: str, state: str) -> QSvgRenderer:
    key = (kind, state)
    found = _renderers.get(key)
    if found is None:
        found = QSvgRenderer(str(icon_path(kind, state)))
        _renderers[key] = found
    return found


def icon_pixmap(kind: str, state: str, width: int) -> QPixmap:
    """The icon at ``width`` device pixels (cached)."""
    key = (kind, state, width)
    found = _pixmaps.get(key)
    if found is None:
        height = round(width * ICON_ASPECT)
        image = QImage(width, height, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(QColor(0, 0, 0, 0))
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer(kind, state).render(painter, QRectF(0, 0, width, height))
        painter.end()
        found = QPixmap.fromImage(image)
        _pixmaps[key] = found
    return found


def qicon(kind: str, state: str) -> QIcon:
    return QIcon(icon_pixmap(kind, state, 64))


def color_swatch(color: str, size: int = 14) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(QColor(color))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawRoundedRect(QRectF(1, 1, size - 2, size - 2), 3, 3)
    painter.end()
    return QIcon(pixmap)
