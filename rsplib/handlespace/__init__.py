"""Pure handlespace: pools, pool elements, policies, ownership checksum, PU cache."""

from rsplib.handlespace.cache import PoolUserCache
from rsplib.handlespace.checksum import ownership_checksum
from rsplib.handlespace.entry import PeKey, PoolElementEntry, TimerKind
from rsplib.handlespace.errors import HandlespaceError
from rsplib.handlespace.handlespace import (
    MAX_HANDLE_RESOLUTION_ITEMS,
    Handlespace,
    RegistrationResult,
)
from rsplib.handlespace.policy import POLICY_KINDS, Engine, PolicyKind, policy_kind
from rsplib.handlespace.policy_parser import format_policy, parse_policy, policy_forms

__all__ = [
    "MAX_HANDLE_RESOLUTION_ITEMS",
    "POLICY_KINDS",
    "Engine",
    "Handlespace",
    "HandlespaceError",
    "PeKey",
    "PolicyKind",
    "PoolElementEntry",
    "PoolUserCache",
    "RegistrationResult",
    "TimerKind",
    "format_policy",
    "ownership_checksum",
    "parse_policy",
    "policy_forms",
    "policy_kind",
]
