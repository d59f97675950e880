"""Fractal parameter files (``.fsf``), the XML format rsplib's fractal pool user reads.

A file looks like::

    <?xml version="1.0" encoding="UTF-8"?>
    <!DOCTYPE XMLFractalSave>
    <FractalV1>
      <Algorithm>
        <AlgorithmName>MandelbrotN</AlgorithmName>
        <C1Real>...</C1Real> <C1Imag>...</C1Imag> <C2Real>...</C2Real> <C2Imag>...</C2Imag>
        <Useroptions><MaxIterations>1000</MaxIterations><N>3</N></Useroptions>
      </Algorithm>
      <ColorScheme><ColorSchemeName>SimpleHSV</ColorSchemeName></ColorScheme>
      <Resolution>800*600</Resolution>
    </FractalV1>

Like rsplib, elements are looked up by tag name anywhere in the document;
ColorScheme and Resolution are ignored; absent N means 2.0 and absent
MaxIterations means 123; an unknown algorithm name falls back to Mandelbrot
with a warning. Coordinates are required. A DOCTYPE with an internal subset or
an external identifier is refused, so no entity is ever expanded.
"""

from __future__ import annotations

import logging
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from xml.parsers import expat

from fractal_pe.fgp import MAX_ITERATIONS, Algorithm

log = logging.getLogger(__name__)

DEFAULT_N = 2.0
DEFAULT_MAX_ITERATIONS = 123  # rsplib's parser default when the tag is absent
DOCTYPE_NAME = "XMLFractalSave"
ROOT_TAG = "FractalV1"
ALGORITHM_NAMES = {"Mandelbrot": Algorithm.MANDELBROT, "MandelbrotN": Algorithm.MANDELBROT_N}


class FsfError(ValueError):
    """A parameter file that cannot be used; the message names the file and the reason."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


@dataclass(frozen=True, slots=True)
class FractalJob:
    """What to draw: algorithm, the complex rectangle from c1 to c2, N and the limit."""

    algorithm: Algorithm
    c1_real: float
    c1_imag: float
    c2_real: float
    c2_imag: float
    n: float = DEFAULT_N
    max_iterations: int = DEFAULT_MAX_ITERATIONS


# What the PU draws before any file is read (rsplib's defaults).
DEFAULT_JOB = FractalJob(Algorithm.MANDELBROT, -1.5, 1.5, 1.5, -1.5, 2.0, 1024)


def _refuse_entities(data: bytes, source: str) -> None:
    """Reject DTD subsets/external ids before ElementTree (which would expand entities)."""

    def on_doctype(name: str, system_id: str | None, public_id: str | None, subset: int) -> None:
        if subset or system_id or public_id:
            raise FsfError(source, f"DOCTYPE {name} with declarations is not allowed")

    def on_entity(*_args: object) -> None:
        raise FsfError(source, "entity declarations are not allowed")

    scanner = expat.ParserCreate()
    scanner.StartDoctypeDeclHandler = on_doctype
    scanner.EntityDeclHandler = on_entity
    try:
        scanner.Parse(data, True)
    except expat.ExpatError as exc:
        raise FsfError(source, f"not well-formed XML ({exc})") from None


def _text(root: ET.Element, tag: str) -> str | None:
    element = root.find(f".//{tag}") if root.tag != tag else root
    if element is None:
        return None
    return (element.text or "").strip()


def _number(root: ET.Element, tag: str, source: str, default: float | None) -> float:
    text = _text(root, tag)
    if text is None:
        if default is None:
            raise FsfError(source, f"<{tag}> is missing")
        return default
    try:
        value = float(text)
    except ValueError:
        raise FsfError(source, f"<{tag}> is not a number: {text!r}") from None
    if not math.isfinite(value):
        raise FsfError(source, f"<{tag}> is not finite: {text!r}")
    return value


def parse_fsf(data: bytes | str, *, source: str = "<fsf>") -> FractalJob:
    """Parse the text of a parameter file; ``source`` names it in error messages."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    _refuse_entities(raw, source)
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise FsfError(source, f"not well-formed XML ({exc})") from None

    name = _text(root, "AlgorithmName")
    if name in ALGORITHM_NAMES:
        algorithm = ALGORITHM_NAMES[name]
    else:
        log.warning("%s: unknown algorithm %r, drawing Mandelbrot", source, name)
        algorithm = Algorithm.MANDELBROT

    iterations_text = _text(root, "MaxIterations")
    if iterations_text is None:
        max_iterations = DEFAULT_MAX_ITERATIONS
    else:
        try:
            max_iterations = int(iterations_text)
        except ValueError:
            raise FsfError(
                source, f"<MaxIterations> is not an integer: {iterations_text!r}"
            ) from None
        if not 0 <= max_iterations <= MAX_ITERATIONS:
            raise FsfError(source, f"<MaxIterations> {max_iterations} outside 0..{MAX_ITERATIONS}")

    return FractalJob(
        algorithm=algorithm,
        c1_real=_number(root, "C1Real", source, None),
        c1_imag=_number(root, "C1Imag", source, None),
        c2_real=_number(root, "C2Real", source, None),
        c2_imag=_number(root, "C2Imag", source, None),
        n=_number(root, "N", source, DEFAULT_N),
        max_iterations=max_iterations,
    )


def read_fsf(path: str | Path) -> FractalJob:
    """Read one ``.fsf`` file; every failure is an ``FsfError`` naming the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FsfError(str(path), f"cannot read ({exc.strerror or exc})") from None
    return parse_fsf(data, source=str(path))


def format_fsf(job: FractalJob, *, resolution: str = "800*600") -> str:
    """The XML text of a parameter file in rsplib's layout (numbers round-trip exactly)."""
    root = ET.Element(ROOT_TAG)
    algorithm = ET.SubElement(root, "Algorithm")
    ET.SubElement(algorithm, "AlgorithmName").text = (
        "MandelbrotN" if job.algorithm == Algorithm.MANDELBROT_N else "Mandelbrot"
    )
    for tag, value in (
        ("C1Real", job.c1_real),
        ("C1Imag", job.c1_imag),
        ("C2Real", job.c2_real),
        ("C2Imag", job.c2_imag),
    ):
        ET.SubElement(algorithm, tag).text = repr(float(value))
    options = ET.SubElement(algorithm, "Useroptions")
    ET.SubElement(options, "MaxIterations").text = str(int(job.max_iterations))
    ET.SubElement(options, "N").text = repr(float(job.n))
    scheme = ET.SubElement(root, "ColorScheme")
    ET.SubElement(scheme, "ColorSchemeName").text = "SimpleHSV"
    ET.SubElement(root, "Resolution").text = resolution
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE {DOCTYPE_NAME}>\n{body}\n'


def write_fsf(job: FractalJob, path: str | Path) -> None:
    Path(path).write_text(format_fsf(job), encoding="utf-8")


def find_fsf_files(directory: str | Path) -> list[Path]:
    """The ``*.fsf`` files of a directory, sorted by name."""
    return sorted(p for p in Path(directory).glob("*.fsf") if p.is_file())
