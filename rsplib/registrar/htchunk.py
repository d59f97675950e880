"""Chunking of Handle Table Responses (rsplib: at most 128 PEs or 1400 bytes each).

The responder snapshots the keys of the PEs to send when a transfer starts and keeps a
cursor per requesting peer; every Handle Table Request continues from the cursor. PEs that
disappeared meanwhile are skipped, so a snapshot never sends stale data.
"""

from __future__ import annotations

from dataclasses import dataclass

from rsplib.handlespace import Handlespace
from rsplib.handlespace.entry import PeKey
from rsplib.wire.params import PoolElementParam, ServerInformation
from rsplib.wire.tlv import encode_pool_element, encode_pool_handle, encode_server_information

#: Message header (4) plus sender and receiver server ids (8).
ENRP_FIXED_SIZE = 12

Groups = tuple[tuple[bytes, tuple[PoolElementParam, ...]], ...]


@dataclass(slots=True)
class ChunkCursor:
    own_children_only: bool
    keys: list[PeKey]
    position: int = 0


def next_chunk(
    cursor: ChunkCursor,
    handlespace: Handlespace,
    *,
    own_id: int | None,
    max_elements: int,
    max_bytes: int,
) -> tuple[Groups, bool]:
    """The next response's (pool handle, PEs) groups and whether more remain (M flag).

    ``own_id`` set: only PEs whose home is ``own_id`` (W flag). At least one PE goes into
    every non-final response, so a transfer always makes progress.
    """
    groups: list[tuple[bytes, list[PoolElementParam]]] = []
    size = ENRP_FIXED_SIZE
    count = 0
    keys = cursor.keys
    position = cursor.position
    while position < len(keys) and count < max_elements:
        pool_handle, identifier = keys[position]
        entry = handlespace.get(pool_handle, identifier)
        if (
            entry is None
            or entry.asap_transport is None
            or entry.home_registrar_id == 0
            or (own_id is not None and entry.home_registrar_id != own_id)
        ):
            position += 1
            continue
        param = entry.to_param(True)
        extra = len(encode_pool_element(param))
        new_group = not groups or groups[-1][0] != pool_handle
        if new_group:
            extra += len(encode_pool_handle(pool_handle))
        if count > 0 and size + extra > max_bytes:
            break
        if new_group:
            groups.append((pool_handle, [param]))
        else:
            groups[-1][1].append(param)
        size += extra
        count += 1
        position += 1
    cursor.position = position
    more = position < len(keys)
    return tuple((ph, tuple(pes)) for ph, pes in groups), more


def server_info_size(info: ServerInformation) -> int:
    return len(encode_server_information(info))
