"""A message-only allocator, to measure a runtime's transport (``harness perf transport``):
every agent sends one tiny message to each neighbour in every round, for ``rounds`` rounds,
and plans nothing. It measures delivery, not allocation: the figures of docs/benchmarks.md."""

from __future__ import annotations

from dataclasses import dataclass

from harness.api import Allocator, Message, Param, Plan


@dataclass(frozen=True)
class Ping(Message):
    """The tiny message: the round it was sent in."""

    rnd: int


class Chatter(Allocator):
    name = "chatter"
    summary = "transport benchmark: each agent pings every neighbour each round, plans nothing"
    paper = "benchmark fixture (docs/benchmarks.md)"
    families = ("assignment", "tdr", "mtsp")
    params = (Param("rounds", 3, "rounds in which every agent pings its neighbours", low=1),)

    def __init__(self, view, params, rng) -> None:  # noqa: ANN001
        super().__init__(view, params, rng)
        self.sent = 0

    def start(self) -> list[tuple[int, Message]]:
        return self._ping(0)

    def step(self, rnd: int, inbox: list[tuple[int, Message]]) -> list[tuple[int, Message]]:
        return self._ping(rnd) if rnd < self.p["rounds"] else []

    def _ping(self, rnd: int) -> list[tuple[int, Message]]:
        self.sent = rnd + 1
        msg = Ping(rnd)  # one object for every neighbour: sized (and pickled) once
        return [(j, msg) for j in self.view.neighbours]

    @property
    def converged(self) -> bool:
        return self.sent >= self.p["rounds"]

    def plan(self) -> Plan:
        return Plan(self.id)


class AsyncChatter(Chatter):
    """The message-only allocator on asynchronous delivery: an agent pings every neighbour
    again once it has heard every neighbour's ping of its current round, for ``rounds``
    rounds. As many messages as ``chatter``, each handled the moment it arrives, so the two
    measure synchronous and asynchronous delivery side by side."""

    name = "chatter_async"
    summary = "transport benchmark on asynchronous delivery: chatter, each ping handled as it comes"
    synchronous = False

    def __init__(self, view, params, rng) -> None:  # noqa: ANN001
        super().__init__(view, params, rng)
        self.heard: dict[int, int] = {}  # round -> pings heard of it

    def receive(self, sender: int, message: Message) -> list[tuple[int, Message]]:
        rnd = message.rnd
        self.heard[rnd] = self.heard.get(rnd, 0) + 1
        out = []
        # a neighbour may be a round ahead: catch up on every round now complete
        while self.sent < self.p["rounds"] and self.heard.get(self.sent - 1, 0) == len(
            self.view.neighbours
        ):
            out += self._ping(self.sent)
        return out
