from typing import Any

class SlotBuilder:
    """Builds ``cls`` instances by storing the named slots directly (C extension)."""

    def __init__(
        self, cls: type[Any], names: tuple[str, ...], fill: tuple[Any, ...] = ...
    ) -> None: ...
    def __call__(self, *values: Any) -> Any: ...

__all__ = ["SlotBuilder"]
