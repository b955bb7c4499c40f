"""(being written: issue 4)"""

from typing import Any

Server: Any = None
connect: Any = None
serve: Any = None
