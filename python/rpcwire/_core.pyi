"""Stubs for the Rust extension `rpcwire._core` (kept in step by stubtest)."""

from typing import Any

__version__: str

class Codec:
    def __init__(self, **kwargs: Any) -> None: ...

class Keyring: ...

def kind(msg: Any) -> str: ...
