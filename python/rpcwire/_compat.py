"""What rpcwire uses of Python 3.11+ on 3.10: ``asyncio.Runner``."""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ("Runner",)

T = TypeVar("T")

if sys.version_info >= (3, 11):
    from asyncio import Runner
else:

    class Runner:
        """The part of 3.11's ``asyncio.Runner`` rpcwire uses: one loop for several ``run`` calls, closed (its
        leftover tasks cancelled, async generators and the default executor shut down) on exit."""

        def __init__(
            self, *, debug: bool | None = None, loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
        ) -> None:
            self._debug = debug
            self._loop_factory = loop_factory
            self._loop: asyncio.AbstractEventLoop | None = None

        def __enter__(self) -> Runner:
            self.get_loop()
            return self

        def __exit__(self, *exc_info: object) -> None:
            self.close()

        def get_loop(self) -> asyncio.AbstractEventLoop:
            if self._loop is None:
                if self._loop_factory is None:
                    self._loop = asyncio.new_event_loop()
                    asyncio.set_event_loop(self._loop)
                else:
                    self._loop = self._loop_factory()
                if self._debug is not None:
                    self._loop.set_debug(self._debug)
            return self._loop

        def run(self, coro: Coroutine[Any, Any, T]) -> T:
            """Run ``coro`` to its end; Ctrl-C cancels it (the coroutine's cleanup runs) and then raises
            ``KeyboardInterrupt``, as 3.11's runner does."""
            loop = self.get_loop()
            task = loop.create_task(coro)
            interrupted = False
            previous = None
            if threading.current_thread() is threading.main_thread() and (
                signal.getsignal(signal.SIGINT) is signal.default_int_handler
            ):

                def on_sigint(signum: int, frame: object) -> None:
                    nonlocal interrupted
                    if interrupted:  # a second Ctrl-C: stop now
                        raise KeyboardInterrupt
                    interrupted = True
                    loop.call_soon_threadsafe(task.cancel)

                previous = signal.signal(signal.SIGINT, on_sigint)
            try:
                return loop.run_until_complete(task)
            except asyncio.CancelledError:
                if interrupted:
                    raise KeyboardInterrupt from None
                raise
            finally:
                if previous is not None:
                    signal.signal(signal.SIGINT, previous)

        def close(self) -> None:
            loop, self._loop = self._loop, None
            if loop is None:
                return
            try:
                tasks = asyncio.all_tasks(loop)
                for task in tasks:
                    task.cancel()
                if tasks:
                    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                if self._loop_factory is None:
                    asyncio.set_event_loop(None)
                loop.close()
