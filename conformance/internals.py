"""The SDK stdio tests that exercise the SDK's private machinery rather than the transport contract.

Each entry: the test's node id -> (why it cannot run against rpcwire, the test of ours that checks the same
behaviour through rpcwire with real processes). Keep this list as short as honesty allows: a test that fails
because rpcwire behaves differently belongs in the fixes, not here.
"""

from __future__ import annotations

INTERNALS: dict[str, tuple[str, str]] = {}
