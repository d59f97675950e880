"""rsp-decode shows FGP messages: the plug-in is loaded by default and decodes PPID 32."""

from __future__ import annotations

from fractal_pe.fgp import Algorithm, FgpData, FgpParameter, encode_fgp
from rsplib.wire import decode_cli


def test_default_plugins_register_the_fgp_decoder() -> None:
    decode_cli._load_default_plugins()
    registered = decode_cli._BY_PPID[32]
    assert registered.protocol == "fgp"
    param = FgpParameter(10, 20, 30, Algorithm.MANDELBROT, -1.0, -1.0, 1.0, 1.0, 2.0)
    decoded = registered.decode(encode_fgp(param))
    assert decoded == param
    assert decode_cli._type_name(decoded) == "FGP_PARAMETER"
    data = registered.decode(encode_fgp(FgpData.finalizer()))
    assert isinstance(data, FgpData) and data.is_finalizer
    assert decode_cli._type_name(data) == "FGP_DATA"
