"""The matrix loop of `rpcwire bench`: group cases by setup, measure, report.

Cases sharing a setup (implementation, transport, framing, compression, encryption) share one
server child process; every case is warmed up, then run `repeat` times, and the median is kept.
Ctrl-C stops the run: the current case is cancelled, every child process is stopped, and the
table and JSON of the cases that finished are still printed/written (exit status 130).
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

from . import modes
from .config import BenchConfig, Case
from .impls import Endpoint, Setup, kill_all_children
from .report import Result, compute_ratios, machine_info, markdown_table, print_table, to_json, write_json

__all__ = ("BenchRun", "run_from_args")

log = logging.getLogger("rpcwire.bench")

#: Longest a single case may take before it is abandoned as an error.
CASE_TIMEOUT = 300.0


def _setup_of(case: Case) -> Setup:
    return Setup(case.impl, case.transport, case.framing, case.compression, case.encrypted)


class BenchRun:
    """One run of the matrix; results accumulate as cases finish (so an interrupt keeps them)."""

    def __init__(self, config: BenchConfig, on_case: Callable[[Case, Result | None], None] | None = None) -> None:
        self.config = config
        self.results: list[Result] = []
        self.errors: list[dict[str, Any]] = []
        self.cases = list(config.cases())
        self.key_hex = secrets.token_hex(32)
        self._on_case = on_case

    def groups(self) -> list[tuple[Setup, list[Case]]]:
        groups: dict[Setup, list[Case]] = {}
        for case in self.cases:
            groups.setdefault(_setup_of(case), []).append(case)
        return list(groups.items())

    async def run_group(self, setup: Setup, cases: Sequence[Case]) -> None:
        try:
            async with Endpoint(setup, self.config.loop, self.key_hex) as endpoint:
                for case in cases:
                    await self._run_case(endpoint, case)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as exc:  # a setup that cannot start: every remaining case is an error
            done = {id(r.case) for r in self.results} | {e["_id"] for e in self.errors}
            for case in cases:
                if id(case) not in done:
                    self._error(case, exc)

    async def _run_case(self, endpoint: Endpoint, case: Case) -> None:
        cfg = self.config
        count = cfg.count_for(case.size, case.mode)
        clients = cfg.clients if case.mode == "concurrent" else 1
        warm = max(2, int(count * cfg.warmup)) if cfg.warmup > 0 else 0
        try:
            async with asyncio.timeout(CASE_TIMEOUT):
                samples = []
                if case.mode == "concurrent":
                    if warm:
                        await modes.concurrent(endpoint, case.size, max(2, warm // clients), clients)
                    for _ in range(cfg.repeat):
                        samples.append(await modes.concurrent(endpoint, case.size, count, clients))  # noqa: PERF401
                else:
                    conn = await endpoint.open()
                    try:
                        run = modes.throughput if case.mode == "throughput" else modes.roundtrip
                        if warm:
                            await run(conn, case.size, warm)
                        for _ in range(cfg.repeat):
                            samples.append(await run(conn, case.size, count))  # noqa: PERF401
                    finally:
                        await endpoint.close_conn(conn)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as exc:
            self._error(case, exc)
            return
        result = Result.from_samples(case, samples, count, clients)
        self.results.append(result)
        if self._on_case is not None:
            self._on_case(case, result)

    def _error(self, case: Case, exc: BaseException) -> None:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if isinstance(exc, TimeoutError):
            text = f"timed out after {CASE_TIMEOUT:.0f} s"
        log.warning("%s: %s", case.label, text)
        self.errors.append({"case": case.label, "error": text, "_id": id(case)})
        if self._on_case is not None:
            self._on_case(case, None)


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
        with progress, asyncio.Runner(loop_factory=_loop_factory(config.loop)) as runner:
            for setup, cases in bench.groups():
                progress.starting(f"{setup.impl} {setup.transport} {setup.framing}")
                runner.run(bench.run_group(setup, cases))
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
