"""What an ENRP peer may change in our handlespace (docs/trust-model.md).

RFC 5353 trusts every registrar of the operational scope, and rsplib takes any process that
connects to its ENRP port as one. A peer's word is only as good as its authentication
(TLS with certificates from the pool's CA, or at least an allow-list), so the core decides
every change a peer asks for here:

* A PE registered at this registrar, over a connection of its own, is changed only by that
  connection: no Handle Update or Handle Table Response overwrites or deletes it.
* An entry owned by another registrar is changed by that registrar; another peer may move it
  to itself (the PE re-registered there) only when the old home is not alive here.
* A Handle Update speaks for its sender's own PEs: the PE's home must be the sender.
  Handle Table Responses may add PEs of third registrars (a mentor's full table), but never
  change them.
* Deletions come only from the entry's home registrar.
* Each home registrar has a quota of PEs, the handlespace a total limit, and each peer a
  rate budget of PE changes per second; what exceeds them is dropped and logged once
  (the periodic audit repairs what a legitimate peer loses this way).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from rsplib.handlespace import PoolElementEntry
from rsplib.ratelimit import RateLimiter
from rsplib.registrar.context import CoreContext

#: Reason returned for changes that are normal and need no log line.
SILENT = ""


class PeerTrust:
    def __init__(self, ctx: CoreContext, is_live: Callable[[int, float], bool]) -> None:
        self.ctx = ctx
        self._is_live = is_live
        cfg = ctx.config
        self._budget = RateLimiter(
            cfg.max_peer_pe_rate,
            burst=max(1.0, cfg.max_peer_pe_burst),
            max_keys=max(16, cfg.max_enrp_peers * 2),
        )

    def within_budget(self, sender: int, pe_count: int, now: float) -> bool:
        """Take ``pe_count`` PE changes from the sender's budget; False (logged) if over."""
        if self._budget.allow(sender, now, float(pe_count)):
            return True
        rate = self.ctx.config.max_peer_pe_rate
        self.refused(sender, "rate", f"more than {rate:g} PE changes per second: dropped")
        return False

    def may_store(
        self,
        sender: int,
        home: int,
        existing: PoolElementEntry | None,
        now: float,
        *,
        from_update: bool,
    ) -> str | None:
        """None if the peer may store this PE; otherwise why not (SILENT: say nothing)."""
        ctx = self.ctx
        me = ctx.server_id
        if home == 0:
            return "PE without home registrar"
        if home == me:
            # Our own PEs are authoritative here; a peer's older view does not change them.
            return SILENT
        if existing is None:
            if from_update and home != sender:
                return f"Handle Update for a PE of registrar 0x{home:08x}"
            if ctx.handlespace.count_of_home(home) >= ctx.config.max_pes_per_peer:
                return f"more than {ctx.config.max_pes_per_peer} PEs of registrar 0x{home:08x}"
            if len(ctx.handlespace) >= ctx.config.max_pool_elements:
                return f"handlespace full ({ctx.config.max_pool_elements} PEs)"
            return None
        owner = existing.home_registrar_id
        if existing.connection is not None:
            return "PE is registered here"
        if owner == sender:
            return None
        if home != sender:
            return f"PE of registrar 0x{owner:08x}"
        if owner != me and self._is_live(owner, now):
            return f"PE of live registrar 0x{owner:08x}"
        return None  # the PE moved to the sender, whose old home is gone (or it was ours)

    def may_delete(self, sender: int, entry: PoolElementEntry) -> str | None:
        if entry.connection is not None:
            return "PE is registered here"
        if entry.home_registrar_id != sender:
            return f"PE of registrar 0x{entry.home_registrar_id:08x}"
        return None

    def refused(self, sender: int, kind: str, detail: str) -> None:
        self.ctx.outbox.log_once(
            ("enrp-peer", sender),
            kind,
            logging.WARNING,
            f"peer 0x{sender:08x}: {detail}; further refusals of this kind are not logged",
        )

    def forget(self, sender: int) -> None:
        self._budget.forget(lambda key: key == sender)
        self.ctx.outbox.forget(("enrp-peer", sender))
