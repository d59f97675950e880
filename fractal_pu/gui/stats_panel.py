"""The statistics side panel: image summary, PE legend and a per-cell table.

* Summary: image number, parameter file, size, sessions, image time, total
  failovers with the last failover time, pixels computed twice, progress.
* Legend: one row per PE that served the current image -- its colour (the
  overlay tint), name (``--pe-name``) or identifier in hex, address and port,
  pixels, cells.
* Cells: one row per cell plus an "all" row: current PE, PEs used in order,
  failovers, last failover time (the old PE's last message -> the first
  resumed pixel, ms: the pool user's best knowledge of the fault, so the
  silence before the detection, e.g. a heartbeat timeout, is in it),
  pixels per PE, pixels computed twice, progress and time.

The panel is refreshed by a timer (a few times a second), not per message.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from fractal_pu.gui.model import CellView, ViewerModel

CELL_COLUMNS = (
    "Cell",
    "PE now",
    "PEs used",
    "Failovers",
    "Last msg→resumed ms",
    "Pixels per PE",
    "Twice",
    "Done %",
    "Time s",
)
LEGEND_COLUMNS = ("", "PE", "Address", "Pixels", "Cells")
LEGEND_ROWS_SHOWN = 4


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _per_pe(counts: dict[int, int], name: Callable[[int | None], str]) -> str:
    return ", ".join(f"{name(pe)}: {n}" for pe, n in sorted(counts.items())) or "-"


def _text(item: QTableWidgetItem | None) -> str:
    return "" if item is None else item.text()


def _table(columns: tuple[str, ...]) -> QTableWidget:
    table = QTableWidget(0, len(columns))
    table.setHorizontalHeaderLabels(list(columns))
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.setMinimumHeight(60)
    return table


class StatsPanel(QWidget):
    def __init__(self, model: ViewerModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.summary = QLabel("No image yet")
        self.summary.setWordWrap(True)
        self.legend = _table(LEGEND_COLUMNS)
        self.cells = _table(CELL_COLUMNS)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.summary)
        layout.addWidget(QLabel("Pool elements (overlay colours)"))
        layout.addWidget(self.legend)
        layout.addWidget(QLabel("Sessions"))
        layout.addWidget(self.cells, 1)

    # ------------------------------------------------------------------ refresh

    def refresh(self, now: float) -> None:
        image = self.model.image
        if image is None:
            return
        name = image.config_name or "default parameters"
        state = (
            "failed: " + image.error
            if image.error
            else ("complete" if image.complete else "incomplete")
            if image.done
            else f"{image.progress * 100:.0f} %"
        )
        self.summary.setText(
            f"Image {image.run}: {name}, {image.width}x{image.height}, "
            f"{len(image.cells)} session(s) -- {state}\n"
            f"Image time {image.elapsed(now):.2f} s, failovers {image.failover_count} "
            f"(last: last message→resumed {_ms(self.model.last_failover_ms)} ms), "
            f"pixels computed twice {image.twice_count}"
        )
        self._fill_legend()
        self._fill_cells(now)

    def _fill_legend(self) -> None:
        entries = self.model.legend.current()
        self.legend.setRowCount(len(entries))
        for row, entry in enumerate(entries):
            swatch = QTableWidgetItem("")
            swatch.setBackground(QBrush(QColor(*entry.colour)))
            cells = ", ".join(str(c + 1) for c in sorted(entry.cells))
            texts = (entry.name, entry.location, str(entry.pixels), cells)
            self.legend.setItem(row, 0, swatch)
            for column, text in enumerate(texts, start=1):
                self.legend.setItem(row, column, QTableWidgetItem(text))
        # As tall as its rows (up to a few), leaving the rest to the sessions table.
        shown = min(max(len(entries), 1), LEGEND_ROWS_SHOWN)
        height = self.legend.horizontalHeader().height() + 2 * self.legend.frameWidth()
        self.legend.setFixedHeight(
            height + shown * self.legend.verticalHeader().defaultSectionSize()
        )

    def _fill_cells(self, now: float) -> None:
        image = self.model.image
        assert image is not None
        self.cells.setRowCount(len(image.cells) + 1)
        per_pe = image.pixels_per_pe()
        total = (
            "all",
            ", ".join(self.model.pe_name(pe) for pe in self.model.current_pes()) or "-",
            str(len(per_pe)) + " PE(s)",
            str(image.failover_count),
            _ms(self.model.last_failover_ms),
            _per_pe(per_pe, self.model.pe_name),
            str(image.twice_count),
            f"{image.progress * 100:.0f}",
            f"{image.elapsed(now):.2f}",
        )
        self._set_row(0, total, None)
        for row, cell in enumerate(image.cells, start=1):
            self._set_row(row, self.cell_texts(cell, now), cell)

    def _set_row(self, row: int, texts: tuple[str, ...], cell: CellView | None) -> None:
        for column, text in enumerate(texts):
            # Items are reused: with hundreds of cells, recreating them each refresh shows.
            item = self.cells.item(row, column)
            if item is None:
                item = QTableWidgetItem()
                self.cells.setItem(row, column, item)
            item.setText(text)
            if column == 1:
                pe = cell.current_pe if cell is not None else None
                if pe is not None and pe in self.model.legend:
                    item.setBackground(QBrush(QColor(*self.model.legend.entry(pe).colour)))
                else:
                    item.setBackground(QBrush())

    def cell_texts(self, cell: CellView, now: float) -> tuple[str, ...]:
        elapsed = cell.elapsed if cell.elapsed is not None else now - cell.started
        if cell.in_failover:
            current = "failover ..."
        elif cell.done:
            current = "done" if cell.complete else f"failed: {cell.error or 'incomplete'}"
        else:
            current = self.model.pe_name(cell.current_pe)
        return (
            str(cell.index + 1),
            current,
            " -> ".join(self.model.pe_name(pe) for pe in cell.pes_used) or "-",
            str(cell.failovers),
            _ms(cell.last_failover_ms),
            _per_pe(cell.pixels_per_pe, self.model.pe_name),
            str(cell.twice),
            f"{cell.progress * 100:.0f}",
            f"{elapsed:.2f}",
        )

    # ------------------------------------------------------------------ for tests and tools

    def legend_names(self) -> list[str]:
        return [_text(self.legend.item(row, 1)) for row in range(self.legend.rowCount())]

    def cell_row(self, cell: int) -> dict[str, str]:
        """The texts of cell ``cell`` (0-based) by column title."""
        row = cell + 1
        return {
            title: _text(self.cells.item(row, column)) for column, title in enumerate(CELL_COLUMNS)
        }
