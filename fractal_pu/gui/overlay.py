"""PE identity colours and the legend model (no Qt here).

Colours come from the Okabe-Ito palette, designed to stay distinguishable
with the common forms of colour blindness. A PE keeps its colour for the
whole run of the viewer (slots are handed out in order of first appearance),
so the same PE looks the same in every image. Beyond eight PEs the colours
repeat; the legend still names every PE.

The overlay picture itself is computed per block with numpy
(:func:`tint_block`): the PE's colour mixed with the fractal's brightness so
the structure stays visible; pixels computed twice are hatched with diagonal
dark stripes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from fractal_pu.palette import HATCH_DARKEN, hatch_stripes

RgbArray = npt.NDArray[np.uint8]

#: Okabe & Ito (2008), "Color Universal Design": orange, sky blue, bluish green,
#: yellow, blue, vermillion, reddish purple, and a dark grey instead of black
#: (black would hide the hatching of pixels computed twice).
PE_COLOURS: tuple[tuple[int, int, int], ...] = (
    (230, 159, 0),
    (86, 180, 233),
    (0, 158, 115),
    (240, 228, 66),
    (0, 114, 178),
    (213, 94, 0),
    (204, 121, 167),
    (90, 90, 90),
)
# Overlay mix: this share of the PE colour, the rest the pixel's own brightness.
TINT_SHARE = 0.6


def pe_text(pe_id: int | None, names: Mapping[int, str] | None = None) -> str:
    """A PE as the viewer names it: its ``--pe-name``, else rsplib's ``$%08x``."""
    if pe_id is None:
        return "-"
    if names and pe_id in names:
        return names[pe_id]
    return f"${pe_id:08x}"


@dataclass
class LegendEntry:
    pe_id: int
    slot: int
    addresses: tuple[str, ...] = ()
    port: int = 0
    #: Pixels of the current image this PE delivered (counting recomputed ones again).
    pixels: int = 0
    #: Cells of the current image it served.
    cells: set[int] = field(default_factory=set)

    @property
    def colour(self) -> tuple[int, int, int]:
        return PE_COLOURS[self.slot % len(PE_COLOURS)]

    #: The PE's name from ``--pe-name`` (else its identifier is shown).
    given_name: str | None = None

    @property
    def name(self) -> str:
        return self.given_name or pe_text(self.pe_id)

    @property
    def location(self) -> str:
        if not self.addresses:
            return "address unknown"
        hosts = ", ".join(self.addresses)
        return f"{hosts} port {self.port}" if self.port else hosts

    def label(self) -> str:
        return f"{self.name}  {self.location}"


class Legend:
    """Every PE seen since the viewer started, with its colour slot."""

    def __init__(self, names: Mapping[int, str] | None = None) -> None:
        #: PE names from ``--pe-name`` (the control center passes the scenario's).
        self.names: Mapping[int, str] = dict(names or {})
        self._entries: dict[int, LegendEntry] = {}

    def entry(self, pe_id: int) -> LegendEntry:
        found = self._entries.get(pe_id)
        if found is None:
            found = LegendEntry(pe_id, len(self._entries), given_name=self.names.get(pe_id))
            self._entries[pe_id] = found
        return found

    def note_address(self, pe_id: int, addresses: tuple[str, ...], port: int) -> None:
        entry = self.entry(pe_id)
        entry.addresses = addresses
        entry.port = port

    def new_image(self) -> None:
        for entry in self._entries.values():
            entry.pixels = 0
            entry.cells.clear()

    def current(self) -> list[LegendEntry]:
        """PEs that served the current image, in colour-slot order."""
        return [e for e in self._entries.values() if e.cells]

    def all(self) -> list[LegendEntry]:
        return list(self._entries.values())

    def __contains__(self, pe_id: object) -> bool:
        return pe_id in self._entries

    def colour_table(self) -> RgbArray:
        """Colour per slot as an array (index with a slot array; -1 is never used)."""
        count = max(1, len(self._entries))
        return np.array([PE_COLOURS[i % len(PE_COLOURS)] for i in range(count)], dtype=np.uint8)


def tint_block(
    base: RgbArray,
    pe_colours: RgbArray,
    twice: npt.NDArray[np.bool_],
    xs: npt.NDArray[np.integer],
    ys: npt.NDArray[np.integer],
) -> RgbArray:
    """Overlay colours of the pixels at (xs, ys).

    ``base`` are their fractal colours (N x 3), ``pe_colours`` the colour of the PE
    that computed each (N x 3, or 1 x 3 for all), ``twice`` marks recomputed pixels.
    """
    brightness = base.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    shade = (0.55 + 0.45 * (brightness / 255.0))[:, None]
    tinted = (
        TINT_SHARE * pe_colours.astype(np.float32) * shade
        + (1.0 - TINT_SHARE) * brightness[:, None]
    )
    tinted[twice & hatch_stripes(xs, ys)] *= HATCH_DARKEN
    result: RgbArray = np.clip(tinted + 0.5, 0, 255).astype(np.uint8)
    return result
