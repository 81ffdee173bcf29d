"""Allocators that misbehave on purpose, registered through HARNESS_EXTRA_ALLOCATORS, to test
that the coordinator stores errors and timeouts and goes on."""

from __future__ import annotations

import os
import socket

from allocators.cbaa import CBAA
from harness.api import Allocator, Param, Plan


class Crashing(CBAA):
    name = "test_crash"
    summary = "CBAA that raises in a given round"
    paper = "test fixture"
    params = (Param("round", 1, "round in which to raise"),)

    def step(self, rnd, inbox):  # noqa: ANN001, ANN201
        if rnd >= self.p["round"]:
            raise ValueError(f"deliberate failure in round {rnd}")
        return super().step(rnd, inbox)


class _NeverDone(Allocator):
    """Plans nothing and never converges: the trial runs until a limit stops it."""

    families = ("assignment", "tdr")

    @property
    def converged(self) -> bool:
        return False

    def plan(self) -> Plan:
        return Plan(self.id)


class Endless(_NeverDone):
    name = "test_endless"
    summary = "never converges and keeps one CPU busy in each round"
    paper = "test fixture"
    params = (Param("spin", 0, "busy iterations per round (0: none)"),)

    def step(self, rnd, inbox):  # noqa: ANN001, ANN201
        where = os.environ.get("HARNESS_TEST_ANNOUNCE")
        if where and rnd == 1 and self.id == 0:  # tell a waiting test which process runs it
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(where)
                s.sendall(str(os.getpid()).encode())
        total = 0
        for i in range(self.p["spin"]):
            total += i
        return []


class Dying(CBAA):
    name = "test_die"
    summary = "CBAA whose agent 1 process exits in a given round (a crashed agent)"
    paper = "test fixture"
    params = (Param("round", 1, "round in which agent 1's process exits"),)

    def step(self, rnd, inbox):  # noqa: ANN001, ANN201
        if self.id == 1 and rnd >= self.p["round"]:
            import os

            os._exit(1)
        return super().step(rnd, inbox)


class Hog(_NeverDone):
    name = "test_hog"
    summary = "keeps 64 MB more memory in every round (a runaway trial)"
    paper = "test fixture"
    families = ("assignment",)
    params = (Param("mb", 64, "megabytes kept per round"),)

    def __init__(self, view, params, rng):  # noqa: ANN001
        super().__init__(view, params, rng)
        self.kept = []

    def step(self, rnd, inbox):  # noqa: ANN001, ANN201
        import numpy as np

        self.kept.append(np.ones(self.p["mb"] * 2**17))  # touched: resident, not only reserved
        return []


class Waiting(_NeverDone):
    name = "test_wait"
    summary = "agent 0 says where it runs, then waits for the test's word before round 1 ends"
    paper = "test fixture"
    params = ()

    def __init__(self, view, params, rng):  # noqa: ANN001
        super().__init__(view, params, rng)
        self.rounds = 0

    @property
    def converged(self) -> bool:
        return self.rounds >= 1

    def step(self, rnd, inbox):  # noqa: ANN001, ANN201
        """Agent 0 sends '<pid> <ray node id or ->' to HARNESS_TEST_ANNOUNCE and blocks until
        the test answers (or closes the connection): a trial held in flight, without sleeps."""
        where = os.environ.get("HARNESS_TEST_ANNOUNCE")
        # not in a worker's warm-up run (a 2-agent instance): tests run it with more agents
        if where and rnd == 1 and self.id == 0 and self.view.n_agents > 2:
            node = "-"
            try:
                import ray

                if ray.is_initialized():
                    node = ray.get_runtime_context().get_node_id()
            except ImportError:
                pass
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(where)
                s.sendall(f"{os.getpid()} {node}".encode())
                s.recv(1)
        self.rounds = rnd
        return []
