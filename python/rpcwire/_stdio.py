"""(being written: issue 4)"""

from typing import Any

stdio: Any = None
