"""The matrix loop of `rpcwire bench`: measure the cases of each cell side by side, report.

A *cell* is one transport, message size and mode; its cases are rpcwire and every baseline (and each
framing/compression/encryption variant) that can run there. The cases of a cell are measured
**interleaved**: each is warmed up, then round after round every case runs once, in an order that
rotates each round. A slow spell of this shared machine then hits every implementation of the cell
alike instead of whichever happened to run during it, and a ratio is the median of the per-round
ratios (see :func:`report.compute_ratios`). Every setup of a transport (one server child process per
implementation for sockets) stays up for all of that transport's cells.

Ctrl-C stops the run: the current cell is cancelled, every child process is stopped, and the table and
JSON of the cells that finished are still printed/written (exit status 130).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from .. import _compat
from . import modes
from .config import BenchConfig, Case
from .impls import Conn, Endpoint, Setup, kill_all_children
from .report import Result, compute_ratios, machine_info, markdown_table, print_table, to_json, write_json

__all__ = ("BenchRun", "run_from_args")

log = logging.getLogger("rpcwire.bench")

#: Longest a single run of one case may take before the case is abandoned as an error.
CASE_TIMEOUT = 300.0


def _setup_of(case: Case) -> Setup:
    return Setup(case.impl, case.transport, case.framing, case.compression, case.encrypted)


class BenchRun:
    """One run of the matrix; results accumulate as cells finish (so an interrupt keeps them)."""

    def __init__(self, config: BenchConfig, on_case: Callable[[Case, Result | None], None] | None = None) -> None:
        self.config = config
        self.results: list[Result] = []
        self.errors: list[dict[str, Any]] = []
        self.cases = list(config.cases())
        self.key_hex = secrets.token_hex(32)
        self._on_case = on_case

    def transports(self) -> list[tuple[str, list[list[Case]]]]:
        """The cells of each transport, in the order the matrix lists them."""
        by_transport: dict[str, dict[tuple[int, str], list[Case]]] = {}
        for case in self.cases:
            cells = by_transport.setdefault(case.transport, {})
            cells.setdefault((case.size, case.mode), []).append(case)
        return [(transport, list(cells.values())) for transport, cells in by_transport.items()]

    async def run_transport(self, cells: Sequence[Sequence[Case]]) -> None:
        """Start every setup the cells need, then measure the cells one after the other."""
        async with contextlib.AsyncExitStack() as stack:
            endpoints: dict[Setup, Endpoint | BaseException] = {}
            for cell in cells:
                for case in cell:
                    setup = _setup_of(case)
                    if setup in endpoints:
                        continue
                    try:
                        endpoints[setup] = await stack.enter_async_context(
                            Endpoint(setup, self.config.loop, self.key_hex, self.config.server_reads)
                        )
                    except (asyncio.CancelledError, KeyboardInterrupt):
                        raise
                    except Exception as exc:  # a setup that cannot start: its cases are errors
                        endpoints[setup] = exc
            for cell in cells:
                await self._run_cell(endpoints, cell)

    async def _run_cell(self, endpoints: dict[Setup, Endpoint | BaseException], cell: Sequence[Case]) -> None:
        cfg = self.config
        live: list[_Runner] = []
        for case in cell:
            endpoint = endpoints[_setup_of(case)]
            if isinstance(endpoint, BaseException):
                self._error(case, endpoint)
            else:
                live.append(_Runner(case, endpoint, cfg))
        started = list(live)
        try:
            for runner in started:
                if not await self._guard(runner, runner.start()):
                    live.remove(runner)
            for round_ in range(cfg.repeat):
                if not live:
                    break
                shift = round_ % len(live)
                for runner in live[shift:] + live[:shift]:
                    if runner.failed is None:
                        await self._guard(runner, runner.sample())
        finally:
            for runner in started:
                with contextlib.suppress(Exception):
                    await runner.stop()
        for runner in live:
            if runner.failed is None:
                result = Result.from_samples(runner.case, runner.samples, runner.count, runner.clients)
                self.results.append(result)
                if self._on_case is not None:
                    self._on_case(runner.case, result)

    async def _guard(self, runner: _Runner, step: Any) -> bool:
        """Run one step of a case; an exception (or the time limit) makes the case an error."""
        try:
            await asyncio.wait_for(step, CASE_TIMEOUT)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as exc:
            runner.failed = exc
            self._error(runner.case, exc)
            return False
        return True

    def _error(self, case: Case, exc: BaseException) -> None:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):  # distinct classes before 3.11
            text = f"timed out after {CASE_TIMEOUT:.0f} s"
        log.warning("%s: %s", case.label, text)
        self.errors.append({"case": case.label, "error": text, "_id": id(case)})
        if self._on_case is not None:
            self._on_case(case, None)


class _Runner:
    """One case of a cell: its connection (kept across rounds), warm-up and samples."""

    def __init__(self, case: Case, endpoint: Endpoint, cfg: BenchConfig) -> None:
        self.case = case
        self.endpoint = endpoint
        self.count = cfg.count_for(case.size, case.mode)
        self.clients = cfg.clients if case.mode == "concurrent" else 1
        self.warm = max(2, int(self.count * cfg.warmup)) if cfg.warmup > 0 else 0
        self.samples: list[modes.Sample] = []
        self.failed: BaseException | None = None
        self._conn: Conn | None = None

    async def start(self) -> None:
        """Open the connection (concurrent mode opens its own per run) and warm up."""
        case = self.case
        if case.mode == "concurrent":
            if self.warm:
                await modes.concurrent(self.endpoint, case.size, max(2, self.warm // self.clients), self.clients)
            return
        self._conn = await self.endpoint.open()
        if self.warm:
            await self._run(self._conn, self.warm)

    async def sample(self) -> None:
        """One measured run."""
        case = self.case
        cpu = self.endpoint.server_cpu_s
        if case.mode == "concurrent":
            self.samples.append(await modes.concurrent(self.endpoint, case.size, self.count, self.clients, cpu))
            return
        assert self._conn is not None
        self.samples.append(await self._run(self._conn, self.count, cpu))

    async def stop(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await self.endpoint.close_conn(conn)

    def _run(self, conn: Conn, count: int, server_cpu: modes.CpuClock = modes.no_clock) -> Any:
        if self.case.mode == "throughput":
            return modes.throughput(conn, self.case.size, count, server_cpu)
        return modes.roundtrip(conn, self.case.size, count, server_cpu=server_cpu)


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if name == "uvloop":
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
        return factory
    return None


class _Progress:
    """A live progress bar on stderr when it is a terminal; one log line per case otherwise."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = total
        self.done = 0
        self._progress: Any = None
        self._task: Any = None
        if enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]bench[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.description}"),
                console=Console(stderr=True),
                transient=True,
            )

    def __enter__(self) -> _Progress:
        if self._progress is not None:
            self._progress.start()
            self._task = self._progress.add_task("", total=self.total)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def starting(self, label: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=label)

    def finished(self, case: Case, result: Result | None) -> None:
        self.done += 1
        if self._progress is not None:
            self._progress.update(self._task, advance=1)
        elif result is not None:
            log.info("[%d/%d] %s: %.0f msg/s", self.done, self.total, case.label, result.msgs_per_s)


def run_config(config: BenchConfig, argv: Sequence[str] = ()) -> tuple[BenchRun, bool, float]:
    """Run the whole matrix. Returns the run, whether it completed, and the elapsed seconds."""
    progress = _Progress(sum(1 for _ in config.cases()), config.progress)
    bench = BenchRun(config, on_case=progress.finished)
    t0 = time.monotonic()
    complete = False
    try:
        with progress, _compat.Runner(loop_factory=_loop_factory(config.loop)) as runner:
            for transport, cells in bench.transports():
                progress.starting(transport)
                runner.run(bench.run_transport(cells))
        complete = True
    except KeyboardInterrupt:
        log.warning("interrupted: reporting the %d case(s) that finished", len(bench.results))
    finally:
        kill_all_children()
    return bench, complete, time.monotonic() - t0


def report(bench: BenchRun, complete: bool, elapsed: float, argv: Sequence[str]) -> None:
    """Print the table (and markdown), write the JSON and the plot, for what finished."""
    config = bench.config
    compute_ratios(bench.results, config.baselines)
    machine = machine_info(config.loop)
    title = (
        f"rpcwire bench: {machine['cpu_model']}, {machine['cpu_count']} CPUs, Python {machine['python']}, "
        f"{config.loop}" + ("" if complete else " (INTERRUPTED: partial results)")
    )
    errors = [{k: v for k, v in e.items() if not k.startswith("_")} for e in bench.errors]
    if bench.results:
        print_table(bench.results, config.baselines, title=title)
    else:
        sys.stdout.write("no case finished\n")
    if config.markdown:
        sys.stdout.write("\n" + markdown_table(bench.results, config.baselines))
    sys.stdout.flush()
    if config.json_path:
        doc = to_json(
            bench.results, config, machine, complete=complete, errors=errors, argv=list(argv), elapsed_s=elapsed
        )
        write_json(config.json_path, doc)
        log.info("wrote %s", config.json_path)
    if config.plot_path and bench.results:
        from .plot import plot_results

        plot_results(bench.results, config.plot_path, title=title)
        log.info("wrote %s", config.plot_path)


def run_from_args(args: argparse.Namespace) -> int:
    """Run `rpcwire bench` with parsed options; returns the exit status (130 when interrupted)."""
    config = BenchConfig.from_args(args)
    argv = ["rpcwire", *sys.argv[1:]] if sys.argv else ["rpcwire"]
    if logging.getLogger().level > logging.INFO and not config.progress:
        logging.getLogger("rpcwire.bench").setLevel(logging.INFO)
    bench, complete, elapsed = run_config(config, argv)
    with contextlib.suppress(BrokenPipeError):
        report(bench, complete, elapsed, argv)
    if not complete:
        return 130
    return 1 if bench.errors and not bench.results else 0
