"""Cheaper construction of the codecs' immutable values.

Decoding a Handle Resolution Response builds a dozen objects per pool element
(addresses, transports, the policy, the element), so how fast Python builds a
frozen dataclass or an ``ipaddress`` object decides the codec's throughput.
Everything here returns ordinary instances -- equal, hashable, immutable,
indistinguishable from what the public constructors make -- only built with
fewer interpreter steps. Each trick checks itself once at import and falls back
to the public constructor if a Python version ever breaks its assumption.

Where the optional C extension ``rsplib.wire._slots`` was compiled (``pip
install`` does it when a C compiler is present), builders store the slots
from C: one allocation and a few pointer stores. ``RSPLIB_PURE_PYTHON=1`` in the
environment turns it off (the tests run the codecs both ways).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address
from operator import attrgetter
from typing import Any, TypeVar

_SlotBuilder: Callable[..., Callable[..., Any]] | None
try:
    from rsplib.wire._slots import SlotBuilder as _SlotBuilder
except ImportError:  # not compiled: the pure-Python paths below
    _SlotBuilder = None
if os.environ.get("RSPLIB_PURE_PYTHON"):
    _SlotBuilder = None

#: Whether values are built by the C extension (else by the pure-Python paths).
NATIVE = _SlotBuilder is not None

_C = TypeVar("_C", bound=type[Any])
_T = TypeVar("_T")


def _frozen_slotted_fields(cls: type[Any], what: str) -> list[dataclasses.Field[Any]]:
    options = getattr(cls, "__dataclass_params__", None)
    if options is None or not options.frozen:
        raise TypeError(f"{what} needs a frozen dataclass, not {cls!r}")
    if "__slots__" not in cls.__dict__:
        raise TypeError(f"{what} needs a slotted dataclass, not {cls!r}")
    fields = list(dataclasses.fields(cls))
    for item in fields:
        if not item.init or item.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{what} cannot build field {cls.__name__}.{item.name}")
    return fields


def slot_init(cls: _C) -> _C:
    """Give a frozen, slotted dataclass a faster ``__init__`` with the same signature.

    The generated ``__init__`` of a frozen dataclass stores every field through
    ``object.__setattr__(self, "name", value)``, a by-name lookup. This one
    stores through the slot descriptors directly. Everything else (equality,
    hash, repr, immutability, ``dataclasses.replace``/``fields``) stays the
    dataclass's own. Apply it above ``@dataclass(frozen=True, slots=True)``;
    fields need plain defaults (no ``default_factory``) and ``init=True``.
    """
    namespace: dict[str, Any] = {}
    arguments: list[str] = []
    body: list[str] = []
    for item in _frozen_slotted_fields(cls, "slot_init"):
        name = item.name
        namespace[f"_set_{name}"] = cls.__dict__[name].__set__
        if item.default is dataclasses.MISSING:
            arguments.append(name)
        else:
            namespace[f"_default_{name}"] = item.default
            arguments.append(f"{name}=_default_{name}")
        body.append(f"    _set_{name}(self, {name})\n")
    source = f"def __init__(self, {', '.join(arguments)}) -> None:\n" + "".join(body)
    exec(source, namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    type.__setattr__(cls, "__init__", init)
    return cls


def frozen_builder(cls: type[_T]) -> Callable[..., _T]:
    """A constructor of ``cls`` (a frozen, slotted dataclass) taking every field positionally.

    Plain attribute stores are the cheapest way to fill slots, but a frozen class
    refuses them. So the value is filled in a mutable twin class with the same
    slots and then switched to ``cls`` (``__class__`` assignment between classes
    of identical layout), about half the cost of ``cls(...)``. With the C
    helper the slots are stored from C instead, cheaper still. For decoders'
    hot paths; everyone else calls ``cls`` itself.
    """
    names = [item.name for item in _frozen_slotted_fields(cls, "frozen_builder")]
    if _SlotBuilder is not None:
        native = _SlotBuilder(cls, tuple(names))
        probe = native(*names)
        if type(probe) is cls and [getattr(probe, n) for n in names] == names:
            return native
    namespace: dict[str, Any] = {"_frozen": cls}
    source = (
        f"def __init__(self, {', '.join(names)}):\n"
        + "".join(f"    self.{name} = {name}\n" for name in names)
        + "    self.__class__ = _frozen\n"
    )
    exec(source, namespace)
    twin = type(
        f"_{cls.__name__}Builder",
        (),
        {"__slots__": cls.__dict__["__slots__"], "__init__": namespace["__init__"]},
    )
    try:
        probe = twin(*names)
    except TypeError:  # layouts not assignable on this Python: use the class itself
        return cls
    if type(probe) is not cls or [getattr(probe, n) for n in names] != names:
        return cls
    return twin


# --------------------------------------------------------------------------- addresses
# ``IPv4Address(n)`` and ``IPv6Address(n)`` validate their argument's type and
# range; a decoder has just unpacked an unsigned 32- or 128-bit integer, so the
# checks are spent for nothing. These store the integer directly.

_new = object.__new__


def _ipv4_direct(value: int) -> IPv4Address:
    address = _new(IPv4Address)
    address._ip = value  # type: ignore[attr-defined]
    return address


def _ipv6_direct(value: int) -> IPv6Address:
    address = _new(IPv6Address)
    address._ip = value  # type: ignore[attr-defined]
    address._scope_id = None  # type: ignore[attr-defined]
    return address


def _direct_works() -> bool:
    try:
        samples_v4 = (0, 1, 0x0A000001, 0xFFFFFFFF)
        samples_v6 = (0, 1, (1 << 120) + 5, 0xFFFF_0A00_0001, (1 << 128) - 1)
        for v in samples_v4:
            fast, slow = _ipv4_direct(v), IPv4Address(v)
            if fast != slow or hash(fast) != hash(slow) or str(fast) != str(slow):
                return False
        for v in samples_v6:
            fast6, slow6 = _ipv6_direct(v), IPv6Address(v)
            if fast6 != slow6 or hash(fast6) != hash(slow6) or str(fast6) != str(slow6):
                return False
            if fast6.scope_id != slow6.scope_id or fast6.ipv4_mapped != slow6.ipv4_mapped:
                return False
            if (
                attrgetter("_ip")(slow6) != v
                or attrgetter("_ip")(IPv4Address(v & 0xFFFFFFFF)) != v & 0xFFFFFFFF
            ):
                return False
    except (AttributeError, TypeError):
        return False
    return True


#: The integer of an IPv4Address or IPv6Address (what ``int(address)`` returns).
address_int: Callable[[IPv4Address | IPv6Address], int]
#: IPv4 address from an unsigned 32-bit integer the caller has range-checked.
ipv4_from_int: Callable[[int], IPv4Address]
#: IPv6 address (no scope) from an unsigned 128-bit integer the caller has range-checked.
ipv6_from_int: Callable[[int], IPv6Address]

if _SlotBuilder is not None:
    _ipv4_direct = _SlotBuilder(IPv4Address, ("_ip",))
    _ipv6_direct = _SlotBuilder(IPv6Address, ("_ip", "_scope_id"), (None,))
if _direct_works():
    ipv4_from_int, ipv6_from_int = _ipv4_direct, _ipv6_direct
    address_int = attrgetter("_ip")
else:  # pragma: no cover - only on a Python whose ipaddress internals changed
    ipv4_from_int, ipv6_from_int = IPv4Address, IPv6Address
    address_int = int


__all__ = ["address_int", "frozen_builder", "ipv4_from_int", "ipv6_from_int", "slot_init"]
