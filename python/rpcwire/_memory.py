"""(being written: issue 4)"""

from typing import Any

memory_pair: Any = None
