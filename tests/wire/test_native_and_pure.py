"""The optional C extension (rsplib.wire._slots) and the pure-Python path agree.

The codec tests of this process run with the extension when it was compiled;
one test reruns the codec tests in a child process with RSPLIB_PURE_PYTHON=1.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rsplib.wire import fastvalues
from rsplib.wire.params import PolicyParam, SctpTransport

REPO = Path(__file__).resolve().parents[2]
COMPILED = importlib.util.find_spec("rsplib.wire._slots") is not None
needs_extension = pytest.mark.skipif(
    not COMPILED, reason="rsplib.wire._slots not compiled (no C compiler at install time)"
)


def test_mode_follows_the_environment() -> None:
    if os.environ.get("RSPLIB_PURE_PYTHON"):
        assert not fastvalues.NATIVE
    else:
        assert fastvalues.NATIVE == COMPILED


@needs_extension
def test_slot_builder_checks_its_class_and_arguments() -> None:
    from rsplib.wire._slots import SlotBuilder

    names = tuple(f.name for f in dataclasses.fields(PolicyParam))
    build = SlotBuilder(PolicyParam, names)
    assert build(5, 0, 0, 1, 2, 0, 0, 0) == PolicyParam(5, 0, 0, 1, 2)
    with pytest.raises(TypeError, match="takes 8 values"):
        build(5)
    with pytest.raises(TypeError, match="keyword"):
        build(5, 0, 0, 1, 2, 0, 0, weight_dpf=0)
    with pytest.raises(TypeError, match="not a slot"):
        SlotBuilder(PolicyParam, ("nonsense",))
    with pytest.raises(TypeError, match="not a slot"):
        SlotBuilder(PolicyParam, ("wire_fields",))  # a method, not a slot

    class WithDict:
        pass

    with pytest.raises(TypeError, match="slots only"):
        SlotBuilder(WithDict, ())
    with pytest.raises(ValueError, match="fill"):
        SlotBuilder(SctpTransport, ("port",), (1, 2))
    # A fill value completes the trailing slots.
    partial = SlotBuilder(SctpTransport, ("port", "addresses", "transport_use"), (0,))
    assert partial(1, ()) == SctpTransport(1, (), 0)


@needs_extension
@pytest.mark.timeout(600)
def test_codecs_pass_on_the_pure_python_path_too() -> None:
    tests = [
        "tests/wire/test_asap.py",
        "tests/wire/test_enrp.py",
        "tests/wire/test_tlv.py",
        "tests/wire/test_fastvalues.py",
        "tests/wire/test_native_and_pure.py::test_mode_follows_the_environment",
        "tests/wire/test_properties.py::test_asap_round_trip",
        "tests/wire/test_properties.py::test_enrp_round_trip",
        "tests/wire/test_codec_agreement.py::test_every_sample_decodes_alike",
        "tests/wire/test_codec_agreement.py::test_asap_messages_encode_and_decode_alike",
        "tests/wire/test_codec_agreement.py::test_enrp_messages_encode_and_decode_alike",
        "tests/wire/test_codec_agreement.py::test_usual_messages_never_reach_the_reference",
    ]
    env = dict(os.environ, RSPLIB_PURE_PYTHON="1")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout
