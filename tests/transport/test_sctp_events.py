"""SCTP socket-API structures, checked without a kernel (layouts as in <linux/sctp.h>)."""

from __future__ import annotations

import struct

import pytest

from rsplib.transport import HeartbeatConfig
from rsplib.transport.sctp_events import (
    ASSOCPARAMS,
    EVENT,
    RTOINFO,
    SCTP_ASSOC_CHANGE,
    SCTP_PEER_ADDR_CHANGE,
    SCTP_SHUTDOWN_EVENT,
    AssocChange,
    OtherNotification,
    PathChange,
    PeerShutdown,
    assoc_params,
    decode_address_list,
    decode_notification,
    decode_sockaddr,
    encode_sockaddr,
    event_subscription,
    rto_info,
)


def test_struct_sizes_match_linux_abi() -> None:
    # sctp_event 8, sctp_rtoinfo 16, sctp_assocparams 20 (as the kernel copies them).
    assert (EVENT.size, RTOINFO.size, ASSOCPARAMS.size) == (8, 16, 20)


def test_assoc_change_is_decoded_with_its_state_name() -> None:
    body = struct.pack("=HHHHi", 1, 0, 10, 10, 7)  # COMM_LOST
    data = struct.pack("=HHI", SCTP_ASSOC_CHANGE, 0, 8 + len(body)) + body
    assert decode_notification(data) == AssocChange("COMM_LOST", 0)


def test_peer_address_change_carries_the_address_and_state() -> None:
    address = encode_sockaddr("10.91.2.2", 3863).ljust(128, b"\0")
    body = address + struct.pack("=ii", 1, 0)  # ADDR_UNREACHABLE
    data = struct.pack("=HHI", SCTP_PEER_ADDR_CHANGE, 0, 8 + len(body)) + body + bytes(4)
    assert decode_notification(data) == PathChange(("10.91.2.2", 3863), "ADDR_UNREACHABLE", 0)


def test_shutdown_and_unknown_notifications() -> None:
    assert decode_notification(struct.pack("=HHIi", SCTP_SHUTDOWN_EVENT, 0, 12, 1)) == (
        PeerShutdown()
    )
    assert decode_notification(struct.pack("=HHI", 0x8009, 0, 8)) == OtherNotification(0x8009)


def test_a_truncated_notification_is_an_error() -> None:
    with pytest.raises(ValueError, match="truncated"):
        decode_notification(struct.pack("=HHI", SCTP_ASSOC_CHANGE, 0, 20))


@pytest.mark.parametrize("host", ["127.0.0.2", "10.91.1.2", "::1", "fd00::7"])
def test_sockaddr_round_trip(host: str) -> None:
    assert decode_sockaddr(encode_sockaddr(host, 9901)) == (host, 9901)


def test_address_list_mixes_families() -> None:
    raw = encode_sockaddr("10.0.0.1", 5) + encode_sockaddr("fd00::1", 5)
    data = struct.pack("=iI", 0, 2) + raw
    assert decode_address_list(data) == [("10.0.0.1", 5), ("fd00::1", 5)]
    assert len(encode_sockaddr("10.0.0.1", 5)) == 16


def test_tuning_follows_the_heartbeat_settings() -> None:
    heartbeat = HeartbeatConfig(interval=2.5, misses=3)
    assert RTOINFO.unpack(rto_info(heartbeat)) == (0, 2500, 2500, 1000)
    assert ASSOCPARAMS.unpack(assoc_params(heartbeat))[1] == 6
    assert EVENT.unpack(event_subscription(SCTP_ASSOC_CHANGE)) == (0, SCTP_ASSOC_CHANGE, 1)
