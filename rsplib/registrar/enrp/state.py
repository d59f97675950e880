"""What the registrar remembers about its ENRP peers and the connections to them.

Plain records shared by the ENRP sub-machines (links, peers, table sync, audit, takeover);
no behaviour beyond trivial helpers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rsplib.addressing import ConnId, PeerAddress
from rsplib.handlespace.entry import PeKey
from rsplib.registrar.htchunk import ChunkCursor


@dataclass(slots=True)
class EnrpConnection:
    """One ENRP connection, accepted or opened by us."""

    conn: ConnId
    address: PeerAddress
    #: The address we dialled (None for an accepted connection).
    outbound_to: PeerAddress | None
    #: Sender id of the first message on it (None until the peer spoke).
    server_id: int | None = None
    #: Our end of it, when the service knows it.
    local: PeerAddress | None = None


@dataclass(slots=True)
class SyncState:
    """Our outstanding Handle Table Request to a peer (mentor sync or audit)."""

    own_children_only: bool
    mentor: bool
    started: float
    #: Audit: PEs of that peer not confirmed yet; purged after the final response.
    marked: set[PeKey] | None = None


@dataclass(slots=True)
class Peer:
    """A registrar we heard a Presence from."""

    server_id: int
    address: PeerAddress | None
    conn: ConnId | None
    last_heard: float
    probing: bool = False
    sync: SyncState | None = None
    #: Where a chunked Handle Table transfer to this peer continues.
    cursor: ChunkCursor | None = None


@dataclass(slots=True)
class Dial:
    """An address we want an ENRP connection to."""

    address: PeerAddress
    static: bool
    backoff: float
    conn: ConnId | None = None
    connecting: bool = False
    failures: int = 0


@dataclass(slots=True)
class Takeover:
    """Our takeover of a silent peer, waiting for the other peers' acks."""

    target: int
    required: set[int]
    expires: float
    acks: set[int] = field(default_factory=set)
