"""How much a decoder accepts from a peer: the limits every codec path enforces.

A message comes from someone who may lie; each count a sender controls
(parameters, nesting, addresses, pool elements, bytes) has a bound here, and
going over it is a :class:`~rsplib.wire.errors.LimitExceededError` (or an
invalid pool handle), never unbounded work.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Safety limits a decoder enforces on untrusted input.

    The defaults follow rsplib where it has a limit (64 addresses per transport,
    pool handles of at most 32 bytes) and are generous elsewhere.
    """

    max_message_size: int = 65535
    #: TLVs per message, nested ones included.
    max_parameters: int = 2048
    #: Message-level TLVs are depth 1, their children depth 2, and so on.
    max_nesting_depth: int = 4
    #: Address TLVs per transport parameter.
    max_addresses: int = 64
    #: Longer pool handles are rejected with cause INVALID_POOL_HANDLE (0xF004).
    max_pool_handle: int = 32
    #: Pool Element parameters per message (HR Response, HT Response, Business Card).
    max_pool_elements: int = 1024


DEFAULT_LIMITS = DecodeLimits()

__all__ = ["DEFAULT_LIMITS", "DecodeLimits"]
