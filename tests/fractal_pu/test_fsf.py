"""Parameter files: rsplib's format, defaults, clear errors, writer, and the bundled set."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from fractal_pe.fgp import Algorithm
from fractal_pe.kernel import compute_rows
from fractal_pu.fsf import (
    DEFAULT_MAX_ITERATIONS,
    DEFAULT_N,
    FractalJob,
    FsfError,
    find_fsf_files,
    format_fsf,
    parse_fsf,
    read_fsf,
    write_fsf,
)
from fractal_pu.split import Rect, sub_parameters

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "fsf"

# Written the way rsplib's shipped files are (long %.64e-style numbers, doctype, extras).
RSPLIB_STYLE = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE XMLFractalSave>
<FractalV1>
 <Algorithm>
  <AlgorithmName>MandelbrotN</AlgorithmName>
  <C1Real>1.1599999999999999200639422269887290894985198974609375000000000000e+00</C1Real>
  <C1Imag>2.5000000000000000000000000000000000000000000000000000000000000000e-01</C1Imag>
  <C2Real>1.2500000000000000000000000000000000000000000000000000000000000000e+00</C2Real>
  <C2Imag>1.5000000000000000000000000000000000000000000000000000000000000000e-01</C2Imag>
  <Useroptions>
   <MaxIterations>1000</MaxIterations>
   <N>7</N>
  </Useroptions>
 </Algorithm>
 <ColorScheme>
  <ColorSchemeName>SimpleHSV</ColorSchemeName>
 </ColorScheme>
 <Resolution>800*600</Resolution>
</FractalV1>
"""


def test_reads_rsplib_style_file() -> None:
    assert parse_fsf(RSPLIB_STYLE) == FractalJob(
        Algorithm.MANDELBROT_N, 1.16, 0.25, 1.25, 0.15, 7.0, 1000
    )


def test_tags_are_found_anywhere_and_defaults_apply() -> None:
    text = """<Other><C2Imag>-1</C2Imag><deep><C1Real>-2</C1Real></deep>
              <C1Imag>1</C1Imag><C2Real>0.5</C2Real>
              <AlgorithmName>Mandelbrot</AlgorithmName></Other>"""
    job = parse_fsf(text)
    assert job == FractalJob(Algorithm.MANDELBROT, -2.0, 1.0, 0.5, -1.0)
    assert (job.n, job.max_iterations) == (DEFAULT_N, DEFAULT_MAX_ITERATIONS) == (2.0, 123)


def test_unknown_algorithm_falls_back_to_mandelbrot_with_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    text = RSPLIB_STYLE.replace(">MandelbrotN<", ">Julia<")
    with caplog.at_level(logging.WARNING, logger="fractal_pu.fsf"):
        job = parse_fsf(text, source="julia.fsf")
    assert job.algorithm == Algorithm.MANDELBROT
    assert "julia.fsf" in caplog.text and "Julia" in caplog.text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("<FractalV1><C1Real>1</C1Real>", "not well-formed"),
        ("", "not well-formed"),
        (
            RSPLIB_STYLE.replace("<C2Real>", "<X>").replace("</C2Real>", "</X>"),
            "<C2Real> is missing",
        ),
        (RSPLIB_STYLE.replace("<N>7</N>", "<N>seven</N>"), "<N> is not a number"),
        (RSPLIB_STYLE.replace("<N>7</N>", "<N>inf</N>"), "<N> is not finite"),
        (RSPLIB_STYLE.replace(">1000<", ">1e3<"), "<MaxIterations> is not an integer"),
        (RSPLIB_STYLE.replace(">1000<", ">2000000<"), "outside 0..1000000"),
    ],
)
def test_clear_errors(text: str, reason: str) -> None:
    with pytest.raises(FsfError) as info:
        parse_fsf(text, source="bad.fsf")
    assert str(info.value).startswith("bad.fsf: ")
    assert reason in str(info.value)


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE FractalV1 [<!ENTITY a "aaaaaaaaaa">]>',
        '<!DOCTYPE FractalV1 SYSTEM "file:///etc/passwd">',
    ],
)
def test_entity_declarations_are_refused(doctype: str) -> None:
    text = RSPLIB_STYLE.replace("<!DOCTYPE XMLFractalSave>", doctype)
    with pytest.raises(FsfError, match="DOCTYPE"):
        parse_fsf(text)


def test_read_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.fsf"
    with pytest.raises(FsfError, match=r"missing\.fsf: cannot read"):
        read_fsf(missing)
    broken = tmp_path / "broken.fsf"
    broken.write_text("<FractalV1>")
    with pytest.raises(FsfError, match=r"broken\.fsf: not well-formed"):
        read_fsf(broken)


def test_writer_round_trips_exactly(tmp_path: Path) -> None:
    job = FractalJob(Algorithm.MANDELBROT_N, 0.1 + 0.2, -1 / 3, 1e-300, -2.5e10, 3.5, 777)
    path = tmp_path / "job.fsf"
    write_fsf(job, path)
    assert read_fsf(path) == job
    text = format_fsf(job)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE XMLFractalSave>\n')
    assert "<FractalV1>" in text and "<ColorSchemeName>SimpleHSV</ColorSchemeName>" in text


def test_bundled_files_exist_and_are_sorted() -> None:
    files = find_fsf_files(ASSETS)
    assert len(files) >= 12
    assert files == sorted(files)


@pytest.mark.parametrize("path", find_fsf_files(ASSETS), ids=lambda p: p.stem)
def test_bundled_file_draws_a_picture(path: Path) -> None:
    job = read_fsf(path)
    assert 256 <= job.max_iterations <= 1000
    if job.algorithm == Algorithm.MANDELBROT_N:
        assert job.n in (3.0, 4.0, 5.0)
    values = compute_rows(sub_parameters(job, Rect(0, 0, 160, 100), 160, 100), 0, 100)
    distinct = np.unique(values)
    assert len(distinct) >= 20, f"{path.name} is nearly blank: {distinct[:10]}"
    # not just the trivial "escaped at once" area outside |c|^2 >= 2
    assert np.count_nonzero(values > 1) > values.size // 4
