"""The Qt control center: a live map of the scenario with one-click fault injection.

Qt lives only in this package (an import-linter contract enforces it); the
engine it drives -- scenario, launchers, orchestrator, status monitor,
storyboards -- is plain asyncio code in :mod:`control_center`.

Threading: the engine runs in one asyncio event loop on a worker thread
(:mod:`control_center.gui.engine`); it talks to the widgets only through Qt
signals delivered as queued connections, and the widgets hand commands to it
with ``run_coroutine_threadsafe``. PySide6's own QtAsyncio loop is not part of
PySide6-Essentials (the module is missing there), and a worker thread keeps
the GUI thread free of subprocess, socket and timer work anyway.
"""
