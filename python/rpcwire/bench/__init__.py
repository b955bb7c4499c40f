"""The `rpcwire bench` harness: a matrix runner with baselines measured in the same run.

Modules: `config` (options and the matrix), `workloads` (MCP-shaped messages), `_peer` (the child
process on the far end of every connection), `impls` (how each implementation runs each mode),
`runner` (the matrix loop), `report` (table, markdown, JSON), `plot` (matplotlib charts).
The JSON output is documented in docs/bench-json-schema.md.
"""

from __future__ import annotations

__all__ = ()
