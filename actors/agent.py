"""The Ray shells of the agent hosts (DESIGN §5): :class:`HostActor` hosts a block of agents
(one by default) and carries their round outputs, copies and online messages to the other
host actors directly; :class:`Monitor` collects the weight of asynchronous trials. The
protocols (synchronous rounds without a barrier, termination without a coordinator,
asynchronous delivery with weight throwing, faults on the sending side) and their logic are in
:mod:`actors.hosts`, plain Python that tests also run in one process.
"""

from __future__ import annotations

import gc
import threading
import traceback
from fractions import Fraction
from typing import Any

import ray

import allocators
from actors.hosts import (
    AgentHost,
    AsyncAgentHost,
    AsyncHosts,
    Copy,
    RoundOut,
    SyncHosts,
)
from harness.execution import OnlineHosts
from harness.model import Instance
from harness.transport import LEAN_GC_THRESHOLD, make_agents


def split(weight: Fraction, parts: int) -> list[Fraction]:
    """``weight`` in ``parts`` positive pieces that sum to it exactly."""
    piece = weight / parts
    return [piece] * parts


@ray.remote(num_cpus=0, concurrency_groups={"wait": 1})
class Monitor:
    """Collects the weight returned by idle hosts; a trial is over when all of it is back.
    ``wait`` blocks in its own thread; everything else runs one call at a time."""

    def __init__(self) -> None:
        self.trial: str | None = None
        self.weight = Fraction(0)
        self.event = threading.Event()

    def reset(self, trial: str) -> None:
        self.event.set()  # release a waiter of an abandoned trial
        self.trial, self.weight = trial, Fraction(0)
        self.event = threading.Event()

    def give(self, trial: str, weight: Fraction) -> None:
        if trial != self.trial:
            return
        self.weight += weight
        if self.weight == 1:
            self.event.set()

    @ray.method(concurrency_group="wait")
    def wait(self, trial: str) -> bool:
        event = self.event
        event.wait()
        return self.trial == trial


@ray.remote(num_cpus=0, concurrency_groups={"wait": 1, "io": 1})
class HostActor:
    """Hosts one agent, or several. A threaded actor: deliveries run one at a time in the
    default group (never interleaved); only ``result`` waits, in its own thread. Plain actors
    take more calls per second than asyncio ones (DESIGN §5; docs/benchmarks.md)."""

    def __init__(self) -> None:
        # this process only delivers messages: collect young objects less often (lean_gc)
        gc.set_threshold(LEAN_GC_THRESHOLD, *gc.get_threshold()[1:])
        self.hosts: dict[int, Any] = {}
        self.trial: str | None = None
        self.error: str | None = None
        self.finished = threading.Event()
        self.calls = 0

    def setup(
        self,
        trial: str,
        inst: Instance,
        name: str,
        params: dict,
        seed: int,
        agents: list[int],
        max_rounds: int,
        faults: dict[str, Any],
        directory: list[int],
        handles: list[Any],
        index: int,
        monitor: Any = None,
    ) -> list[int]:
        from harness.faults import parse_faults

        cls, made = self._new_trial(trial, inst, name, params, seed, agents, handles)
        self.monitor = monitor
        prof = parse_faults(faults)
        self.asynchronous = not cls.synchronous
        kind = AsyncAgentHost if self.asynchronous else AgentHost
        self.hosts = {a.id: kind(a, inst.n_agents, seed, max_rounds, prof) for a in made}
        self.sync = None if self.asynchronous else SyncHosts(self.hosts, directory, index)
        self.asyn = AsyncHosts(self.hosts, directory, index) if self.asynchronous else None
        gc.freeze()  # the instance and the agents are not scanned while the trial runs
        return agents

    def _new_trial(
        self,
        trial: str,
        inst: Instance,
        name: str,
        params: dict,
        seed: int,
        agents: list[int],
        handles: list[Any],
    ) -> tuple[Any, list[Any]]:
        """Forget the last trial (a result() call of it is released, its agents may go) and
        make this trial's agents ``agents``: the allocator class and the agents."""
        self.finished.set()
        gc.unfreeze()
        self.trial, self.error, self.calls = trial, None, 0
        self.finished = threading.Event()
        self.handles = handles
        cls = allocators.get(name)
        return cls, make_agents(inst, cls, params, seed, agents)  # one pass over the graph

    # -- synchronous -----------------------------------------------------------------------
    def begin(self, weight: Fraction | None = None) -> None:
        if self.asynchronous:
            self._route_async(self.asyn.start, weight)
        else:
            self._run_sync(self.sync.start)

    def deliver(self, trial: str, packet: list[RoundOut]) -> None:
        if trial != self.trial or self.error is not None:
            return  # a late packet of an earlier trial
        self._run_sync(lambda: self.sync.receive(packet))

    def _run_sync(self, work: Any) -> None:
        """Deliver here what is this host's (``work``), then one call per other host."""
        try:  # one guard around the whole delivery, not one per message
            packets = work()
        except Exception as exc:  # noqa: BLE001 - reported to the driver, which ends the trial
            self._fail(exc)
            return
        for where, packet in packets.items():
            self.handles[where].deliver.remote(self.trial, packet)
            self.calls += 1
        if self.sync.done:
            self.finished.set()

    def _fail(self, exc: Exception) -> None:
        """An agent raised: the trial's error, for the driver, and the trial ends here."""
        self.error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=-3)}"
        self.finished.set()

    # -- asynchronous ----------------------------------------------------------------------
    def deliver_async(self, trial: str, packet: list[Copy], weight: Fraction) -> None:
        if trial != self.trial:
            return
        self._route_async(lambda: self.asyn.receive(packet), weight)

    def _route_async(self, work: Any, weight: Fraction) -> None:
        """Handle here what is this host's (``work``), then one call per other host, each
        with a share of ``weight``; with nothing to send, the weight goes back to the
        monitor. After an agent's error nothing more is handled, and the weight returns."""
        packets: dict[int, list[Copy]] = {}
        if self.error is None:
            try:
                packets = work()
            except Exception as exc:  # noqa: BLE001 - reported to the driver, which ends it
                self._fail(exc)
                packets = {}
        if not packets:
            self.monitor.give.remote(self.trial, weight)
            return
        for (where, packet), w in zip(packets.items(), split(weight, len(packets)), strict=True):
            self.handles[where].deliver_async.remote(self.trial, packet, w)
            self.calls += 1

    # -- online missions (harness/execution.py) --------------------------------------------
    def online_setup(
        self,
        trial: str,
        inst: Instance,
        name: str,
        params: dict,
        seed: int,
        agents: list[int],
        directory: list[int],
        handles: list[Any],
        index: int,
    ) -> list[int]:
        """Host the agents ``agents`` of an online mission (no rounds of their own: the driver
        paces them, one call a period)."""
        _, made = self._new_trial(trial, inst, name, params, seed, agents, handles)
        self.online = OnlineHosts(made, inst.n_agents, directory, index)
        gc.freeze()
        return agents

    def online_start(self) -> None:
        self._online_send(1, self.online.start())

    def online_step(
        self, rnd: int, now: float, pos: Any, travelled: Any, visited: Any, sample: bool
    ) -> dict[str, Any]:
        """One period: the agents' round; returns once every other host holds its messages."""
        packets, out = self.online.step(rnd, now, pos, travelled, visited, sample)
        self._online_send(rnd + 1, packets)
        return out

    def _online_send(self, rnd: int, packets: dict[int, list[tuple[int, int, Any]]]) -> None:
        refs = [
            self.handles[h].online_deliver.remote(self.trial, rnd, p) for h, p in packets.items()
        ]
        self.calls += len(refs)
        ray.get(refs)

    @ray.method(concurrency_group="io")
    def online_deliver(self, trial: str, rnd: int, packet: list[tuple[int, int, Any]]) -> None:
        if trial == self.trial:
            self.online.put(rnd, packet)

    def online_finish(self) -> dict[str, Any]:
        """What the driver adds up once the mission is over."""
        h = self.online
        return {
            "measures": {a.id: a.measurements() for a in h.agents},
            "stats": h.stats,
            "cpu": h.cpu,
            "calls": self.calls,
            "node": ray.get_runtime_context().get_node_id(),
        }

    # -- results ---------------------------------------------------------------------------
    def close(self) -> None:
        """The driver saw the trial end (asynchronous delivery: all weight returned)."""
        self.finished.set()

    @ray.method(concurrency_group="wait")
    def result(self) -> list[dict[str, Any]] | dict[str, Any]:
        """Per-agent results once every hosted agent is done (synchronous), or once the driver
        closes the trial (asynchronous), or at once after an error."""
        self.finished.wait()
        if self.error is not None:
            return {"error": self.error, "agents": sorted(self.hosts)}
        node = ray.get_runtime_context().get_node_id()
        out = [{**h.result(), "node": node} for h in self.hosts.values()]
        if out:
            out[0]["calls"] = self.calls
            if self.asyn is not None:  # the deliveries this host counted
                out[0]["stats"] = self.asyn.stats
        return out
