"""Trials as Ray work on the cluster's nodes (``harness bench --address``, or ``--dispatch
ray``): the same interface as ``harness.pool.Pool``, with each worker a Ray actor that holds
one CPU of some node instead of a process on the driver's machine.

The driver only schedules: it hands a job (a trial of any runtime, an exact optimum, an
executed mission) to an idle ``TrialWorker``, waits on the results of all of them at once and
stores each row as it comes.

- **Hard time limit.** A job's limit starts when its worker has warmed up (``prepare``, which
  runs before ``run`` on the same actor); a job past it has its actor killed, wherever it
  runs, and a fresh actor takes the slot. The trial is stored as ``timeout``.
- **A node that dies** takes the trials it was running with it: each is run again, once, on
  another node (``RERUN_LIMIT``); lost a second time it is stored as ``error`` with the
  reason. Its slots are not replaced while the cluster has no CPU for them, so the sweep goes
  on at the size of the cluster that is left.
- **A worker process that dies** (a crash, Ray's out-of-memory killer) on a live node: the
  trial is stored as ``error`` and the actor replaced, as the local pool does.
- The driver's death kills its actors (Ray's owner fate sharing): ``--resume`` runs again what
  was in flight.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import ray

from harness.pool import STARTUP_LIMIT
from harness.worker import (
    KILLED,
    RESTART,
    OptimumJob,
    default_memory_limit_mb,
    do_job,
    limit_memory,
    warm_up,
    where_columns,
)

#: how many times a trial lost with its node is run again before it is stored as an error
RERUN_LIMIT = 1
#: the errors of a job whose worker, node or result is gone
LOST = (
    ray.exceptions.RayActorError,
    ray.exceptions.ObjectLostError,
    ray.exceptions.NodeDiedError,
)
#: environment variables a worker on another node needs from the driver
PASSED_ENV = ("HARNESS_EXTRA_ALLOCATORS", "HARNESS_TEST_ANNOUNCE", "PYTHONPATH")


@ray.remote(num_cpus=1)
class TrialWorker:
    """Runs jobs one at a time on one CPU of its node. The memory cap is the driver's
    ``memory_limit_mb``, or (0) 70% of this node's memory shared among its CPUs."""

    def __init__(self, memory_limit_mb: int) -> None:
        ctx = ray.get_runtime_context()
        self.node = ctx.get_node_id()
        cpus = next(
            (n["Resources"].get("CPU", 1) for n in ray.nodes() if n["NodeID"] == self.node), 1
        )
        if not memory_limit_mb:
            memory_limit_mb = default_memory_limit_mb(max(1, int(cpus)))
        limit_memory(memory_limit_mb)
        self.where = where_columns(self.node)

    def where_columns(self) -> dict[str, str]:
        return self.where

    def prepare(self, job: Any) -> bool:
        """What comes before a job's clock starts: imports, the allocator's warm-up."""
        if not isinstance(job, OptimumJob) and job.runtime != "ray":
            warm_up(job.allocator)
        return True

    def run(self, job: Any) -> dict[str, Any]:
        return do_job(job, None, self.where)


@dataclass
class _Slot:
    actor: Any
    where: Any  # an ObjectRef to the actor's where columns, then the columns themselves
    tag: Any = None
    job: Any = None
    limit: float = 0.0
    lost: int = 0  # how many times this job was lost with a node already
    deadline: float = 0.0
    prep: Any = None  # the ObjectRef of ``prepare`` until it returns
    ref: Any = None  # the ObjectRef of ``run``


class ClusterPool:
    """``harness.pool.Pool`` over a Ray cluster: ``size`` trial workers spread over its
    nodes (``ray.init`` done by the caller)."""

    def __init__(self, size: int, memory_limit_mb: int = 0) -> None:
        self.memory_limit_mb = memory_limit_mb
        env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        self.options: dict[str, Any] = {"scheduling_strategy": "SPREAD"}
        if env:
            self.options["runtime_env"] = {"env_vars": env}
        self.size = max(1, size)
        self.slots = [self._spawn() for _ in range(self.size)]
        self.lost: list[tuple[Any, Any, float, int]] = []  # (tag, job, limit, times lost)
        self.notes: list[str] = []  # what the run should say about lost nodes
        self.suspects: set[str] = set()  # nodes that lost a worker: no new workers there

    def _spawn(self) -> _Slot:
        actor = TrialWorker.options(**self.options).remote(self.memory_limit_mb)
        return _Slot(actor, actor.where_columns.remote())

    def idle(self) -> int:
        """Free workers, less those the lost jobs waiting to run again will take."""
        return max(0, sum(1 for s in self.slots if s.tag is None) - len(self.lost))

    def busy(self) -> int:
        return sum(1 for s in self.slots if s.tag is not None) + len(self.lost)

    def submit(self, tag: Any, job: Any, hard_limit: float, lost: int = 0) -> None:
        """Give ``job`` to an idle worker; its clock starts when the worker has warmed up."""
        slot = next(s for s in self.slots if s.tag is None)
        slot.tag, slot.job, slot.limit, slot.lost = tag, job, hard_limit, lost
        slot.deadline = time.monotonic() + STARTUP_LIMIT + hard_limit
        slot.prep = slot.actor.prepare.remote(job)
        slot.ref = slot.actor.run.remote(job)

    def results(self) -> Iterator[tuple[Any, dict[str, Any]]]:
        """Wait for the next results; yields (tag, result), the result ``{KILLED: True, ...}``
        for a job killed past its hard limit."""
        self._resubmit()
        busy = [s for s in self.slots if s.tag is not None]
        if not busy:
            return
        refs = [s.prep if s.prep is not None else s.ref for s in busy]
        timeout = max(0.0, min(s.deadline for s in busy) - time.monotonic())
        ray.wait(refs, num_returns=1, timeout=timeout)
        done = set(ray.wait(refs, num_returns=len(refs), timeout=0)[0])
        now = time.monotonic()
        for slot in busy:
            waited = slot.prep if slot.prep is not None else slot.ref
            if waited in done:
                try:
                    result = ray.get(waited)
                except LOST as exc:  # its actor or node died, or the result with its node
                    yield from self._died(slot, exc)
                    continue
                except ray.exceptions.RayError as exc:  # the call failed (not its worker)
                    tag = self._free(slot)
                    self._replace(slot, kill=True)  # nothing of the job stays queued there
                    yield tag, {"error": f"the job failed on its worker: {_reason(exc)}"}
                    continue
                if waited is slot.prep:
                    slot.prep, slot.deadline = None, now + slot.limit  # the clock starts now
                    continue
                tag = self._free(slot)
                if isinstance(result, dict) and result.pop(RESTART, False):
                    self._replace(slot)  # a worker that ran out of memory is not reused
                yield tag, result
            elif now >= slot.deadline:
                where = self._where(slot) or {}
                tag = self._free(slot)
                self._replace(slot, kill=True)
                yield tag, {KILLED: True, **where}
        self._resubmit()

    @staticmethod
    def _free(slot: _Slot) -> Any:
        tag = slot.tag
        slot.tag = slot.job = slot.prep = slot.ref = None
        return tag

    def _died(self, slot: _Slot, exc: Exception) -> Iterator[tuple[Any, dict[str, Any]]]:
        """``slot``'s actor died mid-job. Its node died, or it is cut off from it (Ray says
        "unavailable" before the node's missed heartbeats mark it dead): the job runs again
        elsewhere, once, and the node takes no new worker in this run. Its process died on a
        live node (a crash, Ray's memory killer): an error, as in the local pool."""
        job, limit, lost = slot.job, slot.limit, slot.lost + 1
        where = self._where(slot)
        tag = self._free(slot)
        node = where["trial_node"] if where else None
        unavailable = isinstance(exc, ray.exceptions.ActorUnavailableError)
        if node is not None and not unavailable and self._alive(node):
            self._replace(slot)
            yield tag, {"error": f"worker process died: {_reason(exc)}", **(where or {})}
            return
        with contextlib.suppress(Exception):  # an actor cut off from its node is let go
            ray.kill(slot.actor, no_restart=True)
        if node is not None:
            self.suspects.add(node)
        self.slots.remove(slot)
        if lost <= RERUN_LIMIT:
            self.lost.append((tag, job, limit, lost))
            self.notes.append(
                f"a job lost with its node {node or '(unknown)'} ran again on another node"
            )
        else:
            yield tag, {"error": f"lost with its node {lost} times: {_reason(exc)}"}
        self._grow_back()

    def _grow_back(self) -> None:
        """After a node's loss: keep at least one worker, and no more than the CPUs of the
        nodes alive and not suspected."""
        cpus = int(
            sum(
                n["Resources"].get("CPU", 0)
                for n in ray.nodes()
                if n["Alive"] and n["NodeID"] not in self.suspects
            )
        )
        while len(self.slots) < max(1, min(cpus, self.size)):
            self.slots.append(self._spawn())

    def _resubmit(self) -> None:
        while self.lost and any(s.tag is None for s in self.slots):
            self.submit(*self.lost.pop(0))

    @staticmethod
    def _where(slot: _Slot) -> dict[str, str] | None:
        """Where ``slot``'s actor runs, or None if it died before it said."""
        if not isinstance(slot.where, dict):
            try:
                slot.where = ray.get(slot.where, timeout=0)
            except Exception:  # noqa: BLE001 - the actor died (or never started) first
                return None
        return slot.where

    @staticmethod
    def _alive(node: str) -> bool:
        return any(n["NodeID"] == node and n["Alive"] for n in ray.nodes())

    def _replace(self, slot: _Slot, kill: bool = False) -> None:
        if kill:
            ray.kill(slot.actor, no_restart=True)
        self.slots[self.slots.index(slot)] = self._spawn()

    def close(self) -> None:
        for slot in self.slots:
            ray.kill(slot.actor, no_restart=True)
        self.slots = []


def _reason(exc: Exception) -> str:
    """The line of a Ray actor error that says why (its node, else its first line)."""
    text = str(exc).strip().splitlines()
    return next((t.strip() for t in text if "node" in t.lower()), text[0] if text else repr(exc))
