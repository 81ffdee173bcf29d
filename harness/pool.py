"""A small process pool with hard time limits.

Each worker is a spawned process serving jobs over a pipe. A job's hard limit starts when the
worker says the job started (after a fresh worker's imports and warm-up, which get
``STARTUP_LIMIT`` seconds of their own). A job past its hard limit has its worker killed (the
trial is stored as ``timeout``) and a fresh worker takes the slot, so a runaway trial can
neither block the run nor leak into the next trial. Workers die with the coordinator, and
each may allocate at most ``memory_limit_mb``.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from harness.worker import KILLED, RESTART, STARTED, serve, where_columns

#: seconds a worker may take to start a job (spawn, imports, warm-up) before its clock starts
STARTUP_LIMIT = 300.0


@dataclass
class Slot:
    proc: Any
    conn: Connection
    tag: Any = None
    deadline: float = 0.0
    limit: float = 0.0  # the job's hard limit, counted from its start


class Pool:
    def __init__(self, size: int, memory_limit_mb: int = 0) -> None:
        self.ctx = mp.get_context("spawn")
        self.memory_limit_mb = memory_limit_mb
        self.slots = [self._spawn() for _ in range(max(1, size))]
        self.notes: list[str] = []  # what the run should say about its workers (nothing yet)
        self.where = where_columns()  # every worker runs on this machine

    def _spawn(self) -> Slot:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=serve, args=(child, self.memory_limit_mb), daemon=True)
        proc.start()
        child.close()
        return Slot(proc, parent)

    def idle(self) -> int:
        return sum(1 for s in self.slots if s.tag is None)

    def busy(self) -> int:
        return len(self.slots) - self.idle()

    def submit(self, tag: Any, job: Any, hard_limit: float) -> None:
        """Give ``job`` (a ``TrialJob`` or an ``OptimumJob``) to an idle worker."""
        slot = next(s for s in self.slots if s.tag is None)
        slot.tag, slot.limit = tag, hard_limit
        slot.deadline = time.monotonic() + STARTUP_LIMIT + hard_limit  # until it starts
        slot.conn.send(job)

    def results(self) -> Iterator[tuple[Any, dict[str, Any]]]:
        """Wait for the next results; yields (tag, result), the result ``{KILLED: True, ...}``
        for a job killed past its hard limit."""
        busy = [s for s in self.slots if s.tag is not None]
        if not busy:
            return
        timeout = max(0.0, min(s.deadline for s in busy) - time.monotonic())
        ready = wait([s.conn for s in busy], timeout=timeout)
        now = time.monotonic()
        for i, slot in enumerate(self.slots):
            if slot.tag is None:
                continue
            if slot.conn in ready:
                try:
                    result = slot.conn.recv()
                except (EOFError, OSError):  # the worker died (out of memory, a crash)
                    result = {"error": "worker process died"}
                    self._replace(i)
                if result == STARTED:  # the job's clock starts now
                    slot.deadline = now + slot.limit
                    continue
                tag, slot.tag = slot.tag, None
                if isinstance(result, dict) and result.pop(RESTART, False):
                    self._replace(i)  # a worker that ran out of memory is not reused
                yield tag, result
            elif now >= slot.deadline:
                tag = slot.tag
                self._replace(i)
                yield tag, {KILLED: True, **self.where}

    def _replace(self, i: int) -> None:
        slot = self.slots[i]
        if slot.proc.is_alive():
            slot.proc.kill()
        slot.proc.join(timeout=10)
        slot.conn.close()
        self.slots[i] = self._spawn()

    def close(self) -> None:
        for slot in self.slots:
            try:
                if slot.tag is None:
                    slot.conn.send(None)
            except OSError:
                pass
        for slot in self.slots:
            slot.proc.join(timeout=2)
            if slot.proc.is_alive():
                slot.proc.kill()
                slot.proc.join(timeout=5)
            slot.conn.close()
