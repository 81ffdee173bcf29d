"""Allocator agents hosted by Ray actors, talking to their peers directly (DESIGN §5).

**Synchronous rounds without a barrier.** In every round an agent sends each of its
synchronisation peers (its graph neighbours, or every agent for a centralised allocator) its
round's output: the messages of that round for that peer, possibly none. An agent runs round
r+1 once it holds the round-r output of every live peer, so rounds stay in step through them.

**Termination without a coordinator.** Each output carries the sender's *quiet count*: 0 if
the sender was not quiet in that round, else one more than the smallest count it had seen (its
own and its peers', from the round before). Quiet means converged and, under the
``quiescence`` rule, nothing of its own on the wire. A count of D+1 (D bounds the diameter of
the live peer graph) proves that every agent was quiet in one same round, after which nothing
can change; the agent then stops and floods a stop flag. The driver learns the exact final
round from the agents' quiet histories and cuts plans and counts there, so the results equal
the local runtime's. Hosts also prove it among themselves without the D+1 rounds: each tells
the others of every round in which all its agents were quiet (``SyncHosts._check_quiet``).

**Faults** are applied by the sending side from :class:`harness.faults.Wire`, whose decisions
depend only on the seed and the message's coordinates, so they are the local runtime's. A
delayed message rides in a later round's output to the same peer. A crashed agent sends its
last output and stops; its peers stop expecting it (the wire's failure detector).

**Asynchronous delivery** (allocators with ``synchronous = False``): every message is handled
as it arrives. Termination is detected by weight throwing (Mattern; Huang): the driver hands
out a total weight of 1 with the start calls, every call carries part of its sender's weight,
and an actor that ends a call without sending anything returns the weight it holds to a
monitor. The weight is back to 1 exactly when no call is in flight and no actor is busy.

**Several agents per actor, one packet per host pair.** A :class:`HostActor` hosts one agent by
default, or a block of agents (:class:`SyncHosts`). What an agent sends in a round is one
:data:`RoundOut`, not a batch per peer: its round, its quiet count, its stop flag and its
messages, as ``(sender, message)`` items that every receiver shares (a broadcast, or nothing)
or a dict receiver -> items. A host delivers the round outputs of its own agents to its own
agents without a call, and sends every other host that holds a receiver one packet a call:
the list of those outputs, a dict payload cut down to that host's receivers. So a broadcast is
pickled once per destination host, and the receiving host fills each of its agents' inboxes
with one ``dict.update`` per packet, not a Python call per message.

This module is the hosts' logic, plain Python without Ray: one agent's round keeping
(:class:`AgentHost`, :class:`AsyncAgentHost`), a host's agents and their routing
(:class:`SyncHosts`, :class:`AsyncHosts`), and :func:`emulate_hosts`, which
runs hosts in one process for tests. :mod:`actors.agent` holds their Ray shells.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import defaultdict, deque
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

from harness.api import Allocator, Inbox, Outgoing, Plan, RoundBatch
from harness.faults import NO_FAULTS, Faults, new_counts
from harness.model import Instance
from harness.transport import (
    MessageStats,
    SizeCache,
    broadcast_of,
    bulk_counts,
    check_outgoing,
    make_agents,
    make_wire,
    sized,
    transmit,
)

Item = tuple[int, Any]  # (sender, message), as the receiver's inbox holds it
#: one agent's round: (round, sender, quiet count, stop, its live receivers or None for all its
#: peers, payload); the payload is the items every receiver gets (a tuple: a broadcast's one
#: item, or none), or a dict receiver -> items (the receivers it does not name get none)
RoundOut = tuple[
    int, int, int, bool, tuple[int, ...] | None, tuple[Item, ...] | dict[int, list[Item]]
]
NO_ITEMS: tuple[Item, ...] = ()


class _Host(ABC):
    """One agent in an actor: the agent itself (made by the transport core's ``make_agents``,
    as on every runtime), its id, the team size, the round limit and the wire of its
    trial's faults; each kind of host sets up its own bookkeeping in ``_setup``."""

    def __init__(
        self,
        agent: Allocator,
        n_agents: int,
        seed: int,
        max_rounds: int,
        faults: Faults = NO_FAULTS,
    ) -> None:
        self.cls = type(agent)
        self.agent = agent
        self.id = agent.id
        self.n = n_agents
        self.max_rounds = max_rounds
        self.wire = make_wire(faults, seed, self.n)
        self.crashed = False
        self._setup()

    @abstractmethod
    def _setup(self) -> None:
        """The kind of host's own bookkeeping, once the agent and its wire are set."""


class AgentHost(_Host):
    """The round keeping of one synchronous agent; returns its round outputs, never sends."""

    def _setup(self) -> None:
        cls, view = self.cls, self.agent.view
        if cls.centralised:
            self.peers = tuple(a for a in range(self.n) if a != self.id)
            self.diameter = 1  # a complete graph stays complete when agents crash
        else:
            self.peers = view.neighbours
            self.diameter = max(1, view.diameter)
            if self.wire is not None and self.wire.crash:
                self.diameter = max(1, self.n - 1)  # crashes can stretch the live graph
        self.n_peers = len(self.peers)
        self.peer_set = frozenset(self.peers)
        self.quiescence = cls.termination != "stable"
        self.round = -1  # last round run
        self.pending: dict[int, dict[int, tuple[list[Any], int]]] = defaultdict(dict)
        self.count = 0
        self.quiet: list[bool] = []  # per round
        self.plans: list[tuple[int, dict[str, Any]]] = []  # (first round, plan) on every change
        #: per round with messages: (round, per type [count, bytes, largest], the receivers)
        self.log: list[tuple[int, dict[str, list[int]], list[int]]] = []
        self.wire_log: list[tuple[int, dict[str, int]]] = []  # (round sent, counters)
        self.held: dict[int, list[tuple[int, int, int, Any]]] = defaultdict(list)  # delayed
        self.done = False
        self.batches: RoundBatches | None = None  # shared by the agents of one host

    def live(self, agent: int, rnd: int) -> bool:
        return self.wire is None or self.wire.alive(agent, rnd)

    def live_peers(self, rnd: int) -> tuple[int, ...] | list[int]:
        """The peers alive in round ``rnd`` (all of them without a wire)."""
        if self.wire is None:
            return self.peers
        return [p for p in self.peers if self.wire.alive(p, rnd)]

    def expected(self, rnd: int) -> int:
        """How many round-``rnd`` outputs of its peers this agent waits for."""
        return self.n_peers if self.wire is None else len(self.live_peers(rnd))

    # -- rounds ------------------------------------------------------------------------------
    def start(self) -> list[RoundOut]:
        out = check_outgoing(self.agent, self.agent.start(), self.n)
        return self._finish_round(0, out, self.count) + self._advance()

    def take(self, rnd: int, entries: list[tuple[int, tuple[Any, int]]]) -> list[RoundOut]:
        """Round-``rnd`` inputs from some peers, as ``(sender, (items, quiet count))``; runs
        every round whose inputs are then all here."""
        if self.done:
            return []
        box = self.pending[rnd]
        box.update(entries)
        # at rest the current round is never complete (every call runs _advance to its end),
        # so only inputs of the current round that complete it can let the agent advance
        if rnd != self.round or len(box) < self.expected(rnd):
            return []
        return self._advance()

    def stopped(self) -> list[RoundOut]:
        """A peer proved global quiescence: nothing can change any more; pass it on."""
        if self.done:
            return []
        self.done = True
        return [(self.round, self.id, self.count, True, self._live_out(self.round), NO_ITEMS)]

    def _advance(self) -> list[RoundOut]:
        """Run every round whose inputs are all here."""
        outs: list[RoundOut] = []
        while (
            not self.done
            and self.round >= 0
            and len(self.pending.get(self.round, ())) == self.expected(self.round)
        ):
            got = self.pending.pop(self.round, {})  # sender -> (items, quiet count)
            rnd_next = self.round + 1
            inbox: list[Outgoing] = []
            if any(map(itemgetter(0), got.values())):  # by sender, in the order each sent
                inbox = list(
                    chain.from_iterable(map(itemgetter(0), map(got.__getitem__, sorted(got))))
                )
            if self.wire is not None:
                inbox = self.wire.order(self.id, rnd_next, inbox)
            if inbox and self.batches is not None:
                inbox = Inbox(inbox, self.batches.get(rnd_next))
            stepped = bool(inbox) or not self.agent.converged
            out = (
                check_outgoing(self.agent, self.agent.step(rnd_next, inbox), self.n)
                if stepped
                else []
            )
            peer_count = min(map(itemgetter(1), got.values()), default=self.count)
            outs += self._finish_round(rnd_next, out, peer_count, stepped)
        return outs

    def _finish_round(
        self, rnd: int, out: list[Outgoing], peer_count: int, stepped: bool = True
    ) -> list[RoundOut]:
        """Close round ``rnd``: its plan (read again only if the agent ``stepped``: nothing
        else changes it), its messages through the wire, counted; the quiet count from
        ``peer_count``, the smallest of the peers' counts this round read."""
        self.round = rnd
        if stepped or not self.plans:
            plan = self.agent.plan().to_dict()
            if not self.plans or self.plans[-1][1] != plan:
                self.plans.append((rnd, plan))
        if self.wire is None:
            sent = out  # receivers were checked by check_outgoing
            on_wire = bool(out)
        else:
            counts = new_counts()
            self.wire.dead.clear()
            for dst, due, i, msg in transmit(self.wire, self.id, rnd, out, counts):
                self.held[dst].append((due, rnd, i, msg))
            self.wire_log.append((rnd, counts, sorted(self.wire.dead)))
            on_wire = False
            sent = []
            for dst, items in list(self.held.items()):
                now = sorted((x for x in items if x[0] == rnd + 1), key=lambda x: x[1:3])
                if len(now) < len(items):
                    on_wire = True
                    self.held[dst] = [x for x in items if x[0] != rnd + 1]
                else:
                    del self.held[dst]
                sent += [(dst, msg) for _due, _sent, _i, msg in now]
                on_wire = on_wire or bool(now)
        if sent:  # counted here, in bulk; the driver adds up the rounds it keeps
            self.log.append((rnd, *bulk_counts(sent, {})))
        quiet = self.agent.converged and (not on_wire or not self.quiescence)
        self.quiet.append(quiet)
        self.count = 1 + min(self.count, peer_count) if quiet else 0
        stop = self.count >= self.diameter + 1
        self.done = stop or rnd >= self.max_rounds
        if not self.live(self.id, rnd + 1):  # injected crash: its last output
            self.done = self.crashed = True
        return [(rnd, self.id, self.count, stop, self._live_out(rnd), self._payload(sent))]

    def _live_out(self, rnd: int) -> tuple[int, ...] | None:
        """The receivers of a round-``rnd`` output: None (every peer) without a wire."""
        return None if self.wire is None else tuple(self.live_peers(rnd + 1))

    def _payload(self, sent: list[Outgoing]) -> tuple[Item, ...] | dict[int, list[Item]]:
        """``sent`` as items for its receivers: one shared item when it is one copy of one
        message to every peer (receivers are peers: check_outgoing), else per receiver."""
        me = self.id
        if not sent:
            return NO_ITEMS
        shared = broadcast_of(sent, self.peer_set)
        if shared is not None:
            return ((me, shared),)
        by_peer: dict[int, list[Item]] = defaultdict(list)
        for dst, msg in sent:
            by_peer[dst].append((me, msg))
        return dict(by_peer)

    def result(self) -> dict[str, Any]:
        return {
            "agent": self.id,
            "quiet": self.quiet,
            "plans": self.plans,
            "log": self.log,
            "wire": self.wire_log,
            "round": self.round,
            "crashed": self.crashed,
            "measures": {} if self.crashed else self.agent.measurements(),
        }


#: asynchronous delivery: (sender, message, receivers or None for every neighbour of the
#: sender, bounces left); a broadcast is one of these, however many receivers it has
Copy = tuple[int, Any, tuple[int, ...] | None, int]


class AsyncAgentHost(_Host):
    """One asynchronous agent: each message handled as it arrives. Faults: partition, drop and
    duplication as on the synchronous wire, with the agent's activation count as its round; a
    delay of d makes the message bounce d times through its sender's actor first; a crash at
    round r silences the agent after r activations (its actor stays, to absorb the weight of
    the messages still sent to it). Its host (:class:`AsyncHosts`) counts what it handles."""

    def _setup(self) -> None:
        self.counts = new_counts()
        self.activations = 0
        self.limit = self.max_rounds * max(1, len(self.agent.view.neighbours))
        self.peers = self.agent.view.neighbours  # a broadcast goes to these
        self.done = True  # async agents never wait: the monitor decides when the trial ends

    def start(self) -> list[Copy]:
        return self._send(check_outgoing(self.agent, self.agent.start(), self.n))

    def receive(self, sender: int, msg: Any) -> list[Copy] | None:
        """Handle one message; returns the copies to send, or None if the agent could not
        handle it (crashed, or past its activation limit): then it was not delivered."""
        if self.crashed or self.activations >= self.limit:
            self.counts["lost_crash"] += int(self.crashed)
            return None
        self.activations += 1
        out = check_outgoing(self.agent, self.agent.receive(sender, msg), self.n)
        sends = self._send(out) if out else []
        if self.wire is not None and not self.wire.alive(self.id, self.activations):
            self.crashed = True
        return sends

    def _send(self, out: list[Outgoing]) -> list[Copy]:
        """The copies of ``out``: without a wire, a broadcast (one message to every neighbour
        once) is one copy; else one per receiver, a delay of d bouncing d times."""
        me = self.id
        if self.wire is None:
            self.counts["sent"] += len(out)
            shared = broadcast_of(out, self.agent.view.neighbour_set)
            if shared is not None:
                return [(me, shared, None, 0)]
            return [(me, msg, (dst,), 0) for dst, msg in out]
        sent = transmit(self.wire, me, self.activations, out, self.counts, rounds=False)
        return [(me, msg, (dst,), due - self.activations - 1) for dst, due, _i, msg in sent]

    def result(self) -> dict[str, Any]:
        plan = Plan(self.id) if self.crashed else self.agent.plan()
        return {
            "agent": self.id,
            "plan": plan.to_dict(),
            "counts": self.counts,
            "activations": self.activations,
            "converged": self.agent.converged,
            "crashed": self.crashed,
            "limited": self.activations >= self.limit,
            "measures": {} if self.crashed else self.agent.measurements(),
        }


class _HostGroup(ABC):
    """The agents of one host actor (agent id -> host of one agent) and where their peers
    are: ``directory`` gives each agent's host index, this host is ``index``."""

    def __init__(self, hosts: dict[int, Any], directory: list[int], index: int) -> None:
        self.hosts, self.directory, self.index = hosts, directory, index
        #: sender -> this host's agents that hear it (they have it as a peer)
        self.targets: dict[int, list[int]] = defaultdict(list)
        for a, h in hosts.items():
            for s in h.peers:
                self.targets[s].append(a)
        #: an agent of this host -> the hosts (this one too) that hold its peers
        self.peer_hosts = {a: sorted({directory[p] for p in h.peers}) for a, h in hosts.items()}

    def start(self) -> dict[int, list[Any]]:
        """Every agent's start, and what follows here; the packets for other hosts."""
        outs: list[Any] = []
        for h in self.hosts.values():
            outs += h.start()
        return self.route(outs)

    @abstractmethod
    def route(self, outs: list[Any]) -> dict[int, list[Any]]:
        """Handle ``outs`` here and what follows; returns host index -> its packet."""


class AsyncHosts(_HostGroup):
    """The asynchronous agents of one host actor and the routing of their copies: each copy
    for an agent here is handled at once (and what that sends, in turn), the copies for other
    hosts go out as one packet per host; a bouncing copy (an injected delay) goes back
    through its sender's host first. Deliveries are counted here, where they happen, in bulk:
    a copy handled by k agents is one entry of k receivers (``stats``), sized once while the
    host's size cache holds it. Plain Python, like :class:`SyncHosts`."""

    def __init__(self, hosts: dict[int, AsyncAgentHost], directory: list[int], index: int) -> None:
        super().__init__(hosts, directory, index)
        self.stats = MessageStats()
        self.sizes: SizeCache = {}

    def receive(self, packet: list[Copy]) -> dict[int, list[Copy]]:
        """A packet from another host (or a bounce): handled here; the packets that follow."""
        return self.route(packet)

    def route(self, copies: list[Copy]) -> dict[int, list[Copy]]:
        """Handle what is for this host's agents until nothing is left for them; returns host
        index -> the packet for that host."""
        queue = deque(copies)
        remote: dict[int, list[Copy]] = defaultdict(list)
        directory, index, hosts = self.directory, self.index, self.hosts
        while queue:
            copy = queue.popleft()
            src, msg, receivers, bounces = copy
            if bounces > 0:  # an injected delay: once more through the sender's host
                remote[directory[src]].append((src, msg, receivers, bounces - 1))
                continue
            if receivers is None:  # a broadcast: every neighbour of the sender
                if src in hosts:  # sent here: the other hosts get it as it is
                    for h in self.peer_hosts[src]:
                        if h != index:
                            remote[h].append(copy)
                receivers = self.targets.get(src, ())
            elif directory[receivers[0]] != index:  # one receiver, on another host
                remote[directory[receivers[0]]].append(copy)
                continue
            handled = []
            for dst in receivers:
                sends = hosts[dst].receive(src, msg)
                if sends is not None:
                    handled.append(dst)
                    if sends:
                        queue.extend(sends)
            if handled:
                size = sized(msg, self.sizes)
                k = len(handled)
                self.stats.add_sent(src, {type(msg).__name__: [k, k * size, size]}, handled)
        return remote


class RoundBatches:
    """The :class:`RoundBatch` of each round for the agents of one host (harness.api.round_batch):
    a host's agents usually step through a round together, so the batches of the two latest
    rounds are kept; an agent that comes late to an older round gets a batch of its own."""

    def __init__(self) -> None:
        self.by_round: dict[int, RoundBatch] = {}

    def get(self, rnd: int) -> RoundBatch:
        batch = self.by_round.get(rnd)
        if batch is None:
            batch = self.by_round[rnd] = RoundBatch()
            for old in [r for r in self.by_round if r < rnd - 1]:
                del self.by_round[old]
        return batch


class SyncHosts(_HostGroup):
    """The synchronous agents of one host actor (agent id -> :class:`AgentHost`) and the
    routing of their round outputs: to this host's own agents in place, to other hosts as one
    packet each (``directory``: agent -> host index; this host is ``index``). Plain Python:
    :class:`HostActor` is its Ray shell, and a test can pass packets between two of these in
    one process."""

    def __init__(self, hosts: dict[int, AgentHost], directory: list[int], index: int) -> None:
        super().__init__(hosts, directory, index)
        batches = RoundBatches()
        for h in hosts.values():
            h.batches = batches
        self.stopping = False  # a stop came: every agent here has stopped
        self.n_hosts = len(set(directory))
        self.checked = 0  # the first round not yet known to be complete here
        self.quiet_hosts: dict[int, set[int]] = {}  # round -> hosts all of whose agents were quiet
        #: host -> the round from which it is quiet for good (every agent there crashed)
        self.quiet_from: dict[int, int] = {}

    @property
    def done(self) -> bool:
        return all(h.done for h in self.hosts.values())

    def receive(self, packet: list[RoundOut]) -> dict[int, list[RoundOut]]:
        """A packet from another host: delivered here, and the packets that follow from it."""
        return self.route(self._take(packet))

    def route(self, outs: list[RoundOut]) -> dict[int, list[RoundOut]]:
        """Deliver ``outs`` to this host's agents, and what they send back, until nothing is
        left for them; returns host index -> the packet for that host."""
        remote: dict[int, list[RoundOut]] = defaultdict(list)
        while outs:
            local: list[RoundOut] = []
            for out in outs:
                self._split(out, local, remote)
            outs = self._take(local) if local else []
            outs += self._check_quiet(remote)  # a round every agent here was quiet in?
        return remote

    def _check_quiet(self, remote: dict[int, list[RoundOut]]) -> list[RoundOut]:
        """Host-level quiescence, the same proof as the agents' quiet counts without their D+1
        rounds: for each round that every agent here has completed (a crashed agent counts as
        quiet after its last round, as ``assemble`` counts it), if all of them were quiet in
        it, tell every other host. A host that hears this of one round from every host knows
        that every agent was quiet in that round, after which nothing can change: it stops
        its agents as a stop flag would. Returns what stopping sends."""
        produced: list[RoundOut] = []
        hosts = self.hosts.values()
        while not self.stopping and self.index not in self.quiet_from:
            r = self.checked
            quiet = True
            running = False  # an agent here ran round r
            for h in hosts:
                if len(h.quiet) > r:
                    quiet = quiet and h.quiet[r]
                    running = True
                elif not h.crashed:
                    return produced  # round r still running here
            self.checked = r + 1
            if quiet:  # a note with the stop flag: quiet for good (every agent here crashed)
                note = (r, -1 - self.index, 0, not running, None, NO_ITEMS)
                for k in range(self.n_hosts):
                    if k != self.index:
                        remote[k].append(note)
                produced += self._host_quiet(r, self.index, forever=not running)
        return produced

    def _host_quiet(self, rnd: int, host: int, forever: bool = False) -> list[RoundOut]:
        """Host ``host`` had all its agents quiet in round ``rnd`` (``forever``: and in every
        round after it)."""
        if forever:
            self.quiet_from[host] = rnd
            rounds = [r for r in self.quiet_hosts if r >= rnd] or [rnd]
        else:
            rounds = [rnd]
        for r in rounds:
            heard = self.quiet_hosts.setdefault(r, set())
            heard.add(host)
            heard.update(k for k, start in self.quiet_from.items() if start <= r)
            if len(heard) == self.n_hosts and not self.stopping:
                return self._stop_all()
        return []

    def _stop_all(self) -> list[RoundOut]:
        """Every agent was quiet in one round: stop every agent here, as a stop flag would."""
        if self.stopping:
            return []
        self.stopping = True
        produced: list[RoundOut] = []
        for h in self.hosts.values():
            produced += h.stopped()
        return produced

    def _split(
        self, out: RoundOut, local: list[RoundOut], remote: dict[int, list[RoundOut]]
    ) -> None:
        """``out`` to each host that holds one of its receivers (a dict payload cut down to
        that host's receivers, so no message travels to a host that has no use for it)."""
        rnd, src, count, stop, live, payload = out
        if src < 0:  # a host's quiet round: already addressed (_check_quiet)
            return
        directory, index = self.directory, self.index
        dests = self.peer_hosts[src] if live is None else sorted({directory[p] for p in live})
        if type(payload) is dict and len(dests) > 1:
            cut: dict[int, dict[int, list[Item]]] = {h: {} for h in dests}
            for dst, items in payload.items():
                if (h := directory[dst]) in cut:
                    cut[h][dst] = items
            for h in dests:
                (local if h == index else remote[h]).append((rnd, src, count, stop, live, cut[h]))
            return
        for h in dests:
            (local if h == index else remote[h]).append(out)

    def _take(self, packet: list[RoundOut]) -> list[RoundOut]:
        """Hand each of this host's agents its inputs from ``packet``, one ``take`` per agent
        and round; returns what the agents send next."""
        hosts = self.hosts
        produced: list[RoundOut] = []
        incoming: dict[int, dict[int, list[Any]]] = {}  # round -> agent -> (sender, input)
        for rnd, src, count, stop, live, payload in packet:
            if src < 0:  # host -1 - src had all its agents quiet in round rnd (stop: for good)
                produced += self._host_quiet(rnd, -1 - src, forever=stop)
                continue
            targets = self.targets.get(src, ()) if live is None else [a for a in live if a in hosts]
            if stop:  # proof that nothing can change: every agent here stops, and says so
                produced += self._stop_all()
                continue
            by_agent = incoming.get(rnd)
            if by_agent is None:
                by_agent = incoming[rnd] = defaultdict(list)
            if type(payload) is dict:
                for a in targets:
                    by_agent[a].append((src, (payload.get(a, NO_ITEMS), count)))
            else:  # the same entry for every target, appended in one C-level pass
                entry = (src, (payload, count))
                deque(map(list.append, map(by_agent.__getitem__, targets), repeat(entry)), 0)
        for rnd, by_agent in incoming.items():
            for a, entries in by_agent.items():
                produced += hosts[a].take(rnd, entries)
        return produced


def emulate_hosts(
    inst: Instance,
    cls: type[Allocator],
    params: dict[str, Any],
    seed: int,
    n_hosts: int,
    max_rounds: int = 10_000,
    faults: Faults = NO_FAULTS,
    order_seed: int | None = None,
) -> tuple[dict[int, dict[str, Any]], int]:
    """A trial on ``n_hosts`` :class:`SyncHosts` (or :class:`AsyncHosts`) in this process, agents packed in
    contiguous blocks as the ray runtime packs them, each packet pickled and unpickled on its
    way as a Ray call would carry it. Packets are delivered first in, first out, or, with
    ``order_seed``, in a shuffled order (any packet in flight next), as calls from several
    hosts may interleave on Ray. Returns the agents' results (what ``HostActor.result`` gives)
    and the number of packets. For tests without Ray and for profiling the hosts."""
    import pickle
    import random

    shuffle = None if order_seed is None else random.Random(order_seed)

    n = inst.n_agents
    per = -(-n // n_hosts)
    directory = [a // per for a in range(n)]
    kind, group = (AgentHost, SyncHosts) if cls.synchronous else (AsyncAgentHost, AsyncHosts)
    groups: list[Any] = []
    for h in range(-(-n // per)):
        made = make_agents(inst, cls, params, seed, [a for a in range(n) if directory[a] == h])
        hosts = {a.id: kind(a, n, seed, max_rounds, faults) for a in made}
        groups.append(group(hosts, directory, h))
    queue: deque[tuple[int, bytes]] = deque()
    packets = 0
    for g in groups:
        queue.extend((h, pickle.dumps(p, protocol=5)) for h, p in g.start().items())
    while queue:
        if shuffle is not None:
            queue.rotate(-shuffle.randrange(len(queue)))
        h, data = queue.popleft()
        packets += 1
        out = groups[h].receive(pickle.loads(data))
        queue.extend((k, pickle.dumps(p, protocol=5)) for k, p in out.items())
    results = {a: h.result() for g in groups for a, h in g.hosts.items()}
    for g in groups:
        if isinstance(g, AsyncHosts) and g.hosts:
            results[min(g.hosts)]["stats"] = g.stats
    return results, packets
