"""Worker processes that run ``noim`` commands at the same moment (concurrency tests).

``CliWorkers(n)`` starts ``n`` processes (``spawn``: each imports noim afresh and opens its
own connections).  ``run(args)`` hands every worker the same command line; the workers wait
at a barrier, so they start it together, and each runs the real ``noim`` command (the click
group, as the console script does) and reports ``(exit code, output)``.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing as mp
import queue
import time
from collections.abc import Sequence
from multiprocessing.context import SpawnProcess
from types import TracebackType
from typing import Any


def _worker(tasks: Any, results: Any, barrier: Any, number: int) -> None:
    from noim.cli import noim_cli

    while (args := tasks.get()) is not None:
        out = io.StringIO()
        barrier.wait()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                code = noim_cli.main(list(args), prog_name="noim", standalone_mode=False)
            except Exception as exc:  # a crash is a result too: the test shows it
                code, _ = 99, out.write(f"{type(exc).__name__}: {exc}")
        results.put((number, int(code or 0), out.getvalue()))


class CliWorkers:
    """``n`` processes that run the same ``noim`` command line together."""

    def __init__(self, n: int) -> None:
        ctx = mp.get_context("spawn")
        self.barrier = ctx.Barrier(n)
        self.results = ctx.Queue()
        self.tasks = [ctx.Queue() for _ in range(n)]
        self.processes: list[SpawnProcess] = [
            ctx.Process(target=_worker, args=(q, self.results, self.barrier, i), daemon=True)
            for i, q in enumerate(self.tasks)
        ]
        for p in self.processes:
            p.start()

    def run(self, args: Sequence[str], timeout: float = 120) -> list[tuple[int, str]]:
        """Every worker's ``(exit code, output)`` of ``noim ARGS`` started at the same moment."""
        for q in self.tasks:
            q.put(tuple(args))
        got: list[tuple[int, int, str]] = []
        deadline = time.monotonic() + timeout
        while len(got) < len(self.tasks):
            try:
                got.append(self.results.get(timeout=1))
            except queue.Empty:
                dead = [p.exitcode for p in self.processes if not p.is_alive()]
                if dead or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"noim {' '.join(args)}: {len(got)} of {len(self.tasks)} workers "
                        f"answered ({len(dead)} died, exit codes {dead})"
                    ) from None
        return [(code, text) for _n, code, text in sorted(got)]

    def close(self) -> None:
        for q in self.tasks:
            q.put(None)
        for p in self.processes:
            p.join(timeout=30)
            if p.is_alive():  # pragma: no cover - a hung worker
                p.kill()

    def __enter__(self) -> CliWorkers:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()
