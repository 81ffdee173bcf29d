"""Centralised baselines as allocators: every agent reports its private row to a leader (agent
0), the leader solves the whole problem and sends each agent its tasks. The messages are real
and counted, so a centralised baseline's communication shows up in the same tables."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.api import Allocator, Message, Outgoing, Plan
from harness.model import Instance, make_comm_graph

LEADER = 0


@dataclass(frozen=True)
class AgentReport(Message):
    """An agent's own data (its row of the agents table and its capability levels)."""

    row: tuple[tuple[str, float], ...]
    caps: tuple[float, ...] | None


@dataclass(frozen=True)
class MeasuredReport(AgentReport):
    """Under uncertainty: also the agent's payoff for every task, from where it measured the
    tasks to be (for leaders that solve with every agent's measurements, not their own)."""

    payoffs: tuple[float, ...]


@dataclass(frozen=True)
class Assignment(Message):
    tasks: tuple[int, ...]
    times: tuple[float, ...] | None


class Centralised(Allocator):
    centralised = True

    def __init__(self, view, params, rng) -> None:  # noqa: ANN001 - see Allocator
        super().__init__(view, params, rng)
        self.reports: dict[int, AgentReport] = {}
        self.solving: dict[int, AgentReport] = {}  # the reports the leader is solving with
        self.result = Plan(self.id)

    @abstractmethod
    def solve(self, inst: Instance) -> list[Plan]:
        """Solve the whole instance; one plan per agent."""

    def measured(self) -> tuple[float, ...] | None:
        """What this agent adds to its report: its measured payoffs (subclasses), or None."""
        return None

    def _report(self) -> AgentReport:
        caps = None if self.view.agent_caps is None else tuple(self.view.agent_caps.tolist())
        row = tuple(sorted(self.view.agent.items()))
        payoffs = self.measured()
        return AgentReport(row, caps) if payoffs is None else MeasuredReport(row, caps, payoffs)

    def start(self) -> list[Outgoing]:
        if self.id != LEADER:
            return [(LEADER, self._report())]
        self.reports[LEADER] = self._report()
        return self._solve_if_ready()

    def step(self, rnd: int, inbox: list[Outgoing]) -> list[Outgoing]:
        for sender, msg in inbox:
            if isinstance(msg, AgentReport):
                self.reports[sender] = msg
            elif isinstance(msg, Assignment):
                self.result = Plan(
                    self.id, list(msg.tasks), None if msg.times is None else list(msg.times)
                )
        return self._solve_if_ready() if self.id == LEADER else []

    def _solve_if_ready(self) -> list[Outgoing]:
        if len(self.reports) < self.view.n_agents:
            return []
        self.solving = self.reports
        plans = self.solve(self.rebuild())
        self.reports = {}
        out: list[Outgoing] = []
        for p in plans:
            times = None if p.times is None else tuple(float(t) for t in p.times)
            if p.agent == LEADER:
                self.result = Plan(LEADER, list(p.tasks), None if times is None else list(times))
            else:
                out.append((p.agent, Assignment(tuple(int(t) for t in p.tasks), times)))
        return out

    def rebuild(self) -> Instance:
        """The whole instance, from the public tasks and the agents' reports."""
        view = self.view
        ids = sorted(self.reports)
        rows = [dict(self.reports[i].row) for i in ids]
        agents: dict[str, Any] = {k: [r[k] for r in rows] for k in rows[0]}
        caps = (
            None
            if self.reports[ids[0]].caps is None
            else np.array([self.reports[i].caps for i in ids])
        )
        return Instance.build(
            name="leader-view",
            family=view.family,
            objective=view.objective,
            agents=agents,
            tasks=dict(view.tasks.columns),
            comm=make_comm_graph("full", len(ids)),
            agent_caps=caps,
            task_caps=view.tasks.caps,
            meta={"distance": view.tasks.distance},
            source="leader",
        )

    def plan(self) -> Plan:
        return self.result
