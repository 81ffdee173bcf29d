"""CBBA: the consensus-based bundle algorithm (Choi, Brunet, How, IEEE T-RO 2009, §IV).

Each agent alternates
1. bundle construction (Alg. 3): add the task of largest marginal score ``c_ij`` that beats the
   current winning bid (``h_ij = c_ij > y_ij``), at its best position in the path, until the
   bundle limit L or no valid task;
2. consensus (Table 1): for every task, the receiver ``i`` compares the sender ``k``'s winner
   ``z_kj`` and bid ``y_kj`` with its own, and updates, resets or leaves, using the
   time stamps ``s`` to judge whose information about a third agent is fresher; then it releases
   every task of its bundle after the first one it was outbid on (eq. 7).

Communication follows the paper's synchronous setting: every agent sends its full table to
its neighbours in every round. Time stamps are receipt times, as in the paper: each message
gets an arrival time inside its round from the receiver's seeded generator, messages are read
in arrival order, ``s_i[k]`` is the receipt time of the last message from ``k`` and
``s_i[m] = max(s_i[m], s_k[m])`` for the others (eq. 6). An agent is converged
once its ``(y, z)`` has not changed for 2D+1 rounds (D: graph diameter), and the runtime ends the
trial when every agent is converged (``termination = "stable"``). Stamps only stay fresh while
agents talk, which is why agents may not fall silent one by one: a silent winner's claim could
no longer beat a stale competing claim elsewhere.

Ties (bids within the tie tolerance of harness/numerics.py): bundle construction prefers the earliest window start, then the lowest task id; a tie in
consensus goes to the lower agent id. For scores without diminishing marginal gains (min-sum
insertion), ``bid_warping`` caps each bid at the previous bid in the bundle (Johnson, Choi,
Ponda, How, CDC 2012), which restores convergence.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter

import numpy as np

from allocators._cbba_rules import NONE, decide  # noqa: F401 - decide: Table 1, re-exported
from allocators._routes import NEG, ROUTING_FAMILIES, Route, default_mode
from harness.api import Allocator, Message, Outgoing, Param, Plan, round_batch
from harness.numerics import TIE_RTOL, beats, best_index, tied


@dataclass(frozen=True)
class WinningBids(Message):
    """The sender's winning bid list ``y``, winner list ``z`` and time stamps ``s``."""

    y: np.ndarray
    z: np.ndarray
    s: np.ndarray


def pick_best(c: np.ndarray, valid: np.ndarray, tw_start: np.ndarray) -> int:
    """Index of the largest ``c`` among ``valid``; ties (within the tie tolerance,
    harness/numerics.py) to the earliest window start, then the lowest id."""
    return best_index(c, tw_start, valid=valid)


def outbids(
    y_new: np.ndarray, z_new: np.ndarray, y_old: np.ndarray, z_old: np.ndarray
) -> np.ndarray:
    """Bid (y_new, z_new) beats (y_old, z_old): higher bid beyond the tie tolerance, or a tied
    bid from a lower id."""
    return beats(y_new, y_old) | (
        tied(y_new, y_old) & (z_new >= 0) & ((z_old < 0) | (z_new < z_old))
    )


class CBBA(Allocator):
    name = "cbba"
    summary = "consensus-based bundle algorithm: bundle construction + Table-1 consensus"
    paper = "Choi, Brunet, How. Consensus-Based Decentralized Auctions for Robust Task Allocation. IEEE T-RO 25(4), 2009"
    families = ("assignment", *ROUTING_FAMILIES)
    termination = "stable"
    params = (
        Param(
            "score",
            "auto",
            "marginal score: auto follows the objective",
            ("auto", "tdr", "min_sum", "min_max", "payoff"),
        ),
        Param(
            "bid_warping", True, "cap each bid at the previous bid in the bundle (non-DMG scores)"
        ),
    )

    def __init__(self, view, params, rng) -> None:  # noqa: ANN001 - see Allocator
        super().__init__(view, params, rng)
        mode = default_mode(view.objective, params["score"])
        self.route = Route(view, mode)
        self.warp = params["bid_warping"] and mode not in ("tdr", "payoff")
        n = view.tasks.n
        self.y = np.full(n, NEG)
        self.z = np.full(n, NONE, dtype=np.int64)
        self.s = np.full(view.n_agents, -1.0)  # time stamps: receipt times
        self.bundle: list[int] = []
        self.stable = 0  # rounds since (y, z) last changed

    # -- phase 1: bundle construction ----------------------------------------------------
    def build_bundle(self) -> bool:
        if self.route.mode == "tdr":  # the same rule, compiled (allocators/_tdr_kernel.py)
            added_tasks = self.route.cbba_fill(self.id, self.y, self.z)
            self.bundle += added_tasks
            return bool(added_tasks)
        return self.build_bundle_python()

    def build_bundle_python(self) -> bool:
        """Bundle construction in plain Python, for every score mode: the reference the
        compiled ``tdr`` construction is tested against."""
        added = False
        tw_start = self.view.tasks["tw_start"]
        while not self.route.full:
            c, pos, start = self.route.candidates()
            if self.warp and self.bundle:
                c = np.minimum(c, self.y[self.bundle[-1]])
            valid = np.isfinite(c) & outbids(c, np.full_like(self.z, self.id), self.y, self.z)
            if not valid.any():
                break
            j = pick_best(c, valid, tw_start)
            self.route.insert(j, int(pos[j]), float(start[j]))
            self.bundle.append(j)
            self.y[j], self.z[j] = c[j], self.id
            added = True
        return added

    # -- phase 2: consensus (Table 1) ----------------------------------------------------
    def consensus_round(self, rnd: int, inbox: list[Outgoing]) -> bool:
        """Table 1 for every message of the round. Each message gets a receipt time inside the
        round, drawn from this agent's seeded generator; messages are read in that order and
        ``s_i[k]`` is the receipt time, as with the paper's continuous-time stamps. With whole
        rounds as stamps, agents at equal distance from ``m`` hold equal stamps, and a relay
        that is stale about a task but as fresh about ``m`` can then block ``m``'s claim for
        good (measured: 2-6 conflicts left on every 300x40 rgg instance tried)."""
        if not inbox:
            return False
        arrivals = rnd + self.rng.random(len(inbox))
        order = np.argsort(arrivals, kind="stable")
        senders = np.fromiter(map(itemgetter(0), inbox), dtype=np.int64, count=len(inbox))
        batch = round_batch(inbox)  # the round's tables, stacked once per process
        rows = batch.rows(WinningBids, inbox)
        ys, zs, ss = (batch.column(WinningBids, f) for f in ("y", "z", "s"))
        cols, (ysm, zsm) = batch.mixed(WinningBids, "y", "z")
        from allocators._cbba_kernel import consensus_kernel  # numba, loaded on first use

        args = (senders[order], arrivals[order], rows[order], ys, zs, ss, cols, ysm, zsm)
        return bool(consensus_kernel(self.id, self.y, self.z, self.s, *args, TIE_RTOL))

    def release(self) -> bool:
        """Drop every bundle task after the first one this agent no longer wins (eq. 7)."""
        lost = next((n for n, j in enumerate(self.bundle) if self.z[j] != self.id), None)
        if lost is None:
            return False
        for j in self.bundle[lost + 1 :]:
            self.y[j], self.z[j] = NEG, NONE
        self.route.remove(set(self.bundle[lost:]))
        self.bundle = self.bundle[:lost]
        return True

    # -- protocol ------------------------------------------------------------------------
    def start(self) -> list[Outgoing]:
        self.build_bundle()
        self.s[self.id] = 1.0  # sent at the end of round 0
        return self._publish()

    def step(self, rnd: int, inbox: list[Outgoing]) -> list[Outgoing]:
        changed = self.consensus_round(rnd, inbox)
        changed |= self.release()
        if changed:  # otherwise bundle construction would see the same inputs as last time
            changed |= self.build_bundle()
        self.s[self.id] = rnd + 1.0  # sent at the end of the round
        self.stable = 0 if changed else self.stable + 1
        return self._publish()

    @property
    def converged(self) -> bool:
        return self.stable > 2 * self.view.diameter

    def _publish(self) -> list[Outgoing]:
        y, z, s = self.y.copy(), self.z.copy(), self.s.copy()
        for a in (y, z, s):
            a.setflags(write=False)
        return self.broadcast(WinningBids(y, z, s))

    def plan(self) -> Plan:
        r = self.route
        return Plan(self.id, list(r.tasks), list(r.times), [float(self.y[j]) for j in r.tasks])
