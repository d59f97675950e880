"""The fractal pool user's Qt viewer (``fractal-pu`` without ``--headless``).

Qt is imported only inside this package. Modules: app (QApplication, entry
point), viewer (main window, image cycle), image_widget (picture and grid),
stats_panel (statistics and legend), actions (menus and keys), bridge (worker
thread -> GUI signal); Qt-free: options, runner (engine worker thread), model
(what is shown), overlay (PE colours, legend), jobs (parameter file choice).
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from fractal_pu.gui.app import main as run

    return run(argv)
