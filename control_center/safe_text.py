"""Text that arrives from the network, made safe to show.

Status and location texts of component status reports come from any UDP sender. Written
raw to a terminal, escape sequences in them retitle the window, clear the screen or forge
lines; in a rich-text widget, markup in them renders. Every such text goes through
:func:`printable` when it enters the monitor's model, so the terminal monitor and the
control center's panels only ever see the escaped form; widgets that interpret markup
also apply :func:`plain_markup`.
"""

from __future__ import annotations

import html


def _escape(char: str) -> str:
    code = ord(char)
    if char == "\\":
        return "\\\\"  # so that an escaped form cannot be forged with backslashes
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: str) -> str:
    """``text`` with every control, format (e.g. bidirectional override), separator other
    than the space, and other non-printable character written as a backslash escape."""
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(c if c.isprintable() and c != "\\" else _escape(c) for c in text)


def plain_markup(text: str) -> str:
    """Printable text for a widget that renders rich text: markup is shown, not applied."""
    return html.escape(printable(text), quote=False)
