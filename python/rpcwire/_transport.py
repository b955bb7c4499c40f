"""(being written: issue 4)"""

from typing import Any

Transport: Any = None
TransportStats: Any = None
