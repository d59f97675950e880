"""The fractal pool user's Qt viewer (``fractal-pu`` without ``--headless``).

Qt is imported only inside this package; :mod:`fractal_pu.cli` imports
:func:`fractal_pu.gui.app.run_viewer` when a window is wanted. Modules: app
(QApplication), viewer (main window, image cycle), image_widget (picture and
grid), stats_panel (statistics and legend), actions (menus and keys), bridge
(worker thread -> GUI signal); Qt-free: options, runner (engine worker
thread), model (what is shown), overlay (PE colours, legend).
"""
