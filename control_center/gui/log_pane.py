"""A pane that follows one component's log (stdout and stderr) as it grows."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QFont, QTextCursor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

#: Lines kept in the pane; older ones scroll away.
MAX_LINES = 5000


class LogPane(QWidget):
    """Pick a component, see its log; new output is appended while "follow" is on."""

    component_changed = Signal(str)  # "" for none (see map_view.MapView)

    def __init__(self, names: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.component: str | None = None
        self.chooser = QComboBox()
        self.chooser.addItem("(none)", None)
        for name in names:
            self.chooser.addItem(name, name)
        self.chooser.currentIndexChanged.connect(self._chosen)
        self.follow = QCheckBox("Follow")
        self.follow.setChecked(True)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Find in log (Enter)")
        self.search.returnPressed.connect(self.find_next)
        self.path_label = QLabel("")
        self.path_label.setStyleSheet("color: #5b6470;")
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setMaximumBlockCount(MAX_LINES)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        font = QFont("DejaVu Sans Mono", 9)
        font.setStyleHint(QFont.StyleHint.Monospace)
        self.text.setFont(font)
        top = QHBoxLayout()
        top.addWidget(QLabel("Log of"))
        top.addWidget(self.chooser)
        top.addWidget(self.follow)
        top.addWidget(self.search, 1)
        top.addWidget(self.path_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.text, 1)

    def add_name(self, name: str) -> None:
        if self.chooser.findData(name) < 0:
            self.chooser.addItem(name, name)

    def show_component(self, name: str | None) -> None:
        index = self.chooser.findData(name)
        if index < 0:
            index = 0
        if index == self.chooser.currentIndex():
            self._chosen(index)
        else:
            self.chooser.setCurrentIndex(index)

    def set_path(self, path: str) -> None:
        self.path_label.setText(path)

    def _chosen(self, index: int) -> None:
        name = self.chooser.itemData(index)
        self.component = name
        self.text.clear()
        self.component_changed.emit(name or "")

    def append(self, component: str, text: str, replace: bool) -> None:
        """New output of ``component`` (ignored if another one is shown now)."""
        if component != self.component:
            return
        scrollbar = self.text.verticalScrollBar()
        at_end = scrollbar.value() >= scrollbar.maximum() - 2
        if replace:
            self.text.setPlainText(text.rstrip("\n"))
        else:
            cursor = self.text.textCursor()
            cursor.movePosition(QTextCursor.MoveOperation.End)
            cursor.insertText(text)
        if self.follow.isChecked() and (at_end or replace):
            scrollbar.setValue(scrollbar.maximum())

    def contents(self) -> str:
        return self.text.toPlainText()

    def find_next(self) -> None:
        needle = self.search.text()
        if needle and not self.text.find(needle):
            cursor = self.text.textCursor()
            cursor.movePosition(QTextCursor.MoveOperation.Start)
            self.text.setTextCursor(cursor)
            self.text.find(needle)
