"""rsp-decode and the trace show FGP messages: fractal_pe's entry point registers the decoder."""

from __future__ import annotations

import importlib.metadata

import pytest

from fractal_pe.fgp import Algorithm, FgpData, FgpParameter, encode_fgp
from rsplib import plugins
from rsplib.capture import decode_cli
from rsplib.trace import summary


def test_fractal_pe_is_an_installed_decoder_plugin() -> None:
    entries = importlib.metadata.entry_points(group=plugins.DECODER_ENTRY_POINTS)
    found = [entry.value for entry in entries if entry.name == "fgp"]
    # Entry points live in the installed metadata: an install older than the entry in
    # pyproject.toml lacks it (scripts/setup.sh reinstalls).
    assert found == ["fractal_pe.decode_plugin:register"], "reinstall: bash scripts/setup.sh"


def test_installed_plugins_register_the_fgp_decoder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode_cli, "_BY_PPID", {})
    monkeypatch.setattr(decode_cli, "_BY_PROTOCOL", {})
    monkeypatch.setattr(summary, "_DECODERS", {})
    assert plugins.load_decoder_plugins() == []
    registered = decode_cli._BY_PPID[32]
    assert registered.protocol == "fgp"
    assert summary._DECODERS[32] == ("fgp", registered.decode)
    param = FgpParameter(10, 20, 30, Algorithm.MANDELBROT, -1.0, -1.0, 1.0, 1.0, 2.0)
    decoded = registered.decode(encode_fgp(param))
    assert decoded == param
    assert decode_cli._type_name(decoded) == "FGP_PARAMETER"
    data = registered.decode(encode_fgp(FgpData.finalizer()))
    assert isinstance(data, FgpData) and data.is_finalizer
    assert decode_cli._type_name(data) == "FGP_DATA"
