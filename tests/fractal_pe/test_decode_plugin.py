"""rsp-decode shows FGP messages: fractal_pe's entry point registers the PPID 32 decoder."""

from __future__ import annotations

import importlib.metadata

import pytest

from fractal_pe.fgp import Algorithm, FgpData, FgpParameter, encode_fgp
from rsplib.capture import decode_cli


def test_fractal_pe_is_an_installed_decoder_plugin() -> None:
    entries = importlib.metadata.entry_points(group=decode_cli.DECODER_ENTRY_POINTS)
    assert [entry.value for entry in entries if entry.name == "fgp"] == [
        "fractal_pe.decode_plugin:register"
    ]


def test_installed_decoders_register_the_fgp_decoder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode_cli, "_BY_PPID", {})
    monkeypatch.setattr(decode_cli, "_BY_PROTOCOL", {})
    decode_cli._load_installed_decoders()
    registered = decode_cli._BY_PPID[32]
    assert registered.protocol == "fgp"
    param = FgpParameter(10, 20, 30, Algorithm.MANDELBROT, -1.0, -1.0, 1.0, 1.0, 2.0)
    decoded = registered.decode(encode_fgp(param))
    assert decoded == param
    assert decode_cli._type_name(decoded) == "FGP_PARAMETER"
    data = registered.decode(encode_fgp(FgpData.finalizer()))
    assert isinstance(data, FgpData) and data.is_finalizer
    assert decode_cli._type_name(data) == "FGP_DATA"
