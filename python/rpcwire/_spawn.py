"""(being written: issue 4)"""

from typing import Any

spawn: Any = None
