"""A pool user's picture inside the control center: the live image and its failovers.

The pool user writes the image it is computing to a file (``--live-image``);
the engine reads it whenever it changes and the window hands it to this pane,
which draws it as large as the pane allows with its aspect ratio kept (so
resizing never throws the picture away). Under the picture the pane lists the
pool user's last failovers as the pool user reported them, with the control
center's own fault-to-resume time beside the pool user's detected-to-resume
time where the control center injected the fault.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPaintEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from control_center.gui.view_model import FailoverView

#: Failovers listed under the picture (the timeline has all of them).
FAILOVERS_SHOWN = 3
MIN_PICTURE = QSize(160, 100)


class PictureView(QWidget):
    """The picture, scaled to fit with its aspect ratio; a note while there is none."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image: QImage | None = None
        self.note = "no picture yet: start the pool user"
        self.setMinimumSize(MIN_PICTURE)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:
        return QSize(480, 300)

    def picture_rect(self) -> QRectF:
        """Where the picture is drawn (the widget's rectangle if there is none)."""
        area = QRectF(self.rect())
        if self.image is None or self.image.isNull():
            return area
        scale = min(area.width() / self.image.width(), area.height() / self.image.height())
        w, h = self.image.width() * scale, self.image.height() * scale
        return QRectF(area.center().x() - w / 2, area.center().y() - h / 2, w, h)

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            painter.fillRect(self.rect(), QColor("#20252e"))
            if self.image is None or self.image.isNull():
                painter.setPen(QColor("#c8ccd4"))
                painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.note)
                return
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(self.picture_rect(), self.image)
        finally:
            painter.end()


class PicturePane(QWidget):
    """One pool user's picture and its last failovers (the content of its dock)."""

    def __init__(self, user: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.user = user
        self.view = PictureView(self)
        self.failovers = QLabel("no failover yet")
        self.failovers.setObjectName("failovers")
        self.failovers.setWordWrap(True)
        self.failovers.setTextFormat(Qt.TextFormat.PlainText)
        self.failovers.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
        self.failovers.setStyleSheet("padding: 2px 4px;")
        # Room for the lines shown, always: a new failover must not resize the docks
        # (and with them the map, whose re-fit repaints its whole background).
        lines = self.failovers.fontMetrics().lineSpacing() * (FAILOVERS_SHOWN + 1)
        self.failovers.setFixedHeight(lines + 6)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.failovers)
        self.pictures = 0

    def set_picture(self, data: bytes) -> bool:
        """Show a PNG; False (and the old picture stays) when it cannot be decoded."""
        image = QImage.fromData(data)
        if image.isNull():
            return False
        self.view.image = image
        self.pictures += 1
        self.view.update()
        return True

    def set_note(self, text: str) -> None:
        """What the pane says while it has no picture."""
        self.view.note = text
        self.view.update()

    def show_failovers(self, failovers: Iterable[FailoverView]) -> None:
        last = list(failovers)[-FAILOVERS_SHOWN:]
        if not last:
            self.failovers.setText("no failover yet")
            return
        lines = [
            f"{f.old} → {f.new} ({f.report.reason}), image {f.report.image}: {f.figures()}"
            for f in reversed(last)
        ]
        self.failovers.setText("\n".join(lines))
        self.failovers.setToolTip("\n".join(f.text() for f in reversed(last)))
