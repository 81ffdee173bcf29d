"""An agent's route and the marginal score of inserting any task into it (vectorised over tasks).

Score modes, all "higher is better":

``tdr``      time-discounted reward (Choi, Brunet, How 2009, §V): a task is inserted at its best
             position; start times of tasks already in the path stay fixed; the insertion is
             infeasible when the earliest start exceeds the latest start that keeps the next
             task's time (or the window end); score ``value * exp(-lambda * (start - tw_start))``.
             With fixed times the marginal gain can only shrink as the path grows (diminishing
             marginal gain), which CBBA's convergence and its equality with sequential greedy need.
``min_sum``  minus the added travel cost of the best insertion; times are re-derived as the
             earliest-start schedule, windows checked by forward slack (push-forward).
``min_max``  minus the route's completion time after the best insertion.
``nn``       append-only: minus the distance from the route's last point (nearest neighbour).
``payoff``   single assignment: ``100 / distance`` from the agent's start (CAGA), empty route only.

Ties between insertion positions go to the earliest position.
"""

from __future__ import annotations

import math

import numpy as np

from harness.api import LocalView
from harness.geometry import pairwise

#: families whose agents serve routes of located tasks (the allocators built on ``Route``)
ROUTING_FAMILIES = (
    "tdr",
    "mtsp",
    "tsplib",
    "mtsp_lkh3",
    "solomon",
    "logistics",
    "li_lim",
    "cordeau_darp",
)
#: the same without time-discounted rewards (cost-minimising routing only)
COST_ROUTING_FAMILIES = tuple(f for f in ROUTING_FAMILIES if f != "tdr")

NEG = -math.inf
EPS = 1e-9
MODES = ("tdr", "min_sum", "min_max", "nn", "payoff")


def default_mode(objective: str, score: str = "auto") -> str:
    """The score mode an allocator uses: ``score`` as asked, or the objective's own."""
    if score != "auto":
        return score
    return {"max_tdr": "tdr", "min_sum": "min_sum", "min_max": "min_max", "max_payoff": "payoff"}[
        objective
    ]


class Route:
    def __init__(self, view: LocalView, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown score mode {mode!r}")
        self.view = view
        self.mode = mode
        t = view.tasks
        self.tw_start, self.tw_end, self.dur = t["tw_start"], t["tw_end"], t["duration"]
        self.value, self.disc, self.demand = t["value"], t["discount"], t["demand"]
        self.D = t.between if mode != "payoff" else None
        a = view.agent
        self.speed = a["speed"]
        self.cpd = a["cost_per_distance"]
        self.t0, self.t_end = a["avail_start"], a["avail_end"]
        self.capacity = a["capacity"]
        self.limit = view.bundle_limit
        self.d0 = t.from_point(view.position)
        end = view.end
        self.dend = None if end is None else t.to_point(end)
        self.inside = t["service_distance"]  # distance driven within each task
        self.d0_end = (
            None
            if end is None
            else float(pairwise(view.position.reshape(1, 3), end.reshape(1, 3), t.distance)[0, 0])
        )
        self.allowed = view.capable()
        self.tasks: list[int] = []
        self.times: list[float] = []
        self.in_path = np.zeros(t.n, dtype=bool)
        self.load = 0.0
        # tdr: score and start time of every task at gap k in row k (allocators/_tdr_kernel.py)
        self._G: np.ndarray | None = None
        self._E: np.ndarray | None = None
        if mode == "payoff":
            self.payoff = self.value * 100.0 / np.maximum(self.d0, 1.0)

    # -- facts about the current route ----------------------------------------------------
    @property
    def full(self) -> bool:
        return len(self.tasks) >= self.limit

    def distance(self) -> float:
        if not self.tasks:
            return 0.0
        p = self.tasks
        d = self.d0[p[0]] + sum(self.D[p[k], p[k + 1]] for k in range(len(p) - 1))
        d += float(self.inside[p].sum())
        if self.dend is not None:
            d += self.dend[p[-1]]
        return float(d)

    def completion(self) -> float:
        if not self.tasks:
            return self.t0
        last = self.tasks[-1]
        done = self.times[-1] + self.dur[last]
        if self.dend is not None:
            done += self.dend[last] / self.speed
        return float(done)

    # -- scoring ---------------------------------------------------------------------------
    def candidates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(score, position, start time) of the best insertion of every task; -inf if none."""
        n = self.view.tasks.n
        best = np.full(n, NEG)
        pos = np.zeros(n, dtype=np.int64)
        start = np.zeros(n)
        if self.full:
            return best, pos, start
        ok_base = self.allowed & ~self.in_path & (self.load + self.demand <= self.capacity + EPS)
        if self.mode == "payoff":
            if not self.tasks:
                best[ok_base] = self.payoff[ok_base]
                start = np.maximum(self.t0 + self.d0 / self.speed, self.tw_start)
            return best, pos, start
        L = len(self.tasks)
        if self.mode == "tdr":
            if self._G is None:
                self._tdr_start()
            scores, starts = self._G[: L + 1], self._E[: L + 1]
            pos = scores.argmax(axis=0)  # first maximum: ties go to the earliest position
            cols = np.arange(len(pos))
            best = np.where(ok_base, scores[pos, cols], NEG)
            return best, pos, starts[pos, cols]
        if self.mode == "nn":
            dprev, est = self._from_previous(L)
            ok = ok_base & (est <= self.tw_end + EPS) & self._can_finish(est)
            return np.where(ok, -dprev, NEG), np.full(n, L), est
        return self._routing_candidates(ok_base)

    def _routing_candidates(self, ok_base: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``min_sum`` / ``min_max``: every gap at once, as (gaps x tasks) arrays. Inserting a
        task pushes the next stop by ``push``; it is feasible if the push fits the forward slack,
        and the route's completion grows by what waiting further on does not absorb."""
        L = len(self.tasks)
        path = np.array(self.tasks, dtype=np.int64)
        times = np.array(self.times)
        prev_rows = np.vstack([self.d0[None, :], self.D[path]])  # stop before gap k -> task
        finish_prev = np.concatenate([[self.t0], times + self.dur[path]])
        est = np.maximum(finish_prev[:, None] + prev_rows / self.speed, self.tw_start[None, :])
        after = est + self.dur[None, :]
        ok = ok_base[None, :] & (est <= self.tw_end[None, :] + EPS)
        dnext = np.zeros_like(est)
        dold = np.zeros(L + 1)
        completion = np.empty_like(est)
        if L:
            slack, wait_suffix, _ = self._slack()
            to_next = self.D[:, path].T  # task -> the stop after gap k
            new_start = np.maximum(after[:L] + to_next / self.speed, self.tw_start[path][:, None])
            push = new_start - times[:, None]
            ok[:L] &= push <= slack[:, None] + EPS
            dnext[:L] = to_next
            dold[:L] = np.concatenate([[self.d0[path[0]]], self.D[path[:-1], path[1:]]])
            completion[:L] = self.completion() + np.maximum(0.0, push - wait_suffix[:, None])
        if self.dend is not None:
            arrive_end = after[L] + self.dend / self.speed
            ok[L] &= arrive_end <= self.t_end + EPS
            dnext[L] = self.dend
            dold[L] = self.d0_end if L == 0 else self.dend[path[-1]]
            completion[L] = arrive_end
        else:
            ok[L] &= after[L] <= self.t_end + EPS
            completion[L] = after[L]
        if self.mode == "min_sum":
            score = -self.cpd * (prev_rows + dnext - dold[:, None] + self.inside[None, :])
        else:
            score = -completion
        score = np.where(ok, score, NEG)
        pos = score.argmax(axis=0)  # first maximum: ties go to the earliest position
        cols = np.arange(score.shape[1])
        return score[pos, cols], pos, est[pos, cols]

    def _from_previous(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Distances from the stop before gap ``k`` (the start point for k = 0) to every task,
        and every task's earliest service start there."""
        if k == 0:
            dprev, finish_prev = self.d0, self.t0
        else:
            a = self.tasks[k - 1]
            dprev, finish_prev = self.D[a], self.times[k - 1] + self.dur[a]
        return dprev, np.maximum(finish_prev + dprev / self.speed, self.tw_start)

    # -- tdr: the gap cache ------------------------------------------------------------------
    def _tdr_start(self) -> None:
        """Build the compiled scorer's inputs and every gap's row (allocators/_tdr_kernel.py)."""
        from allocators import _tdr_kernel as K  # numba, loaded on first use

        n = self.view.tasks.n
        rows = [self.tw_start, self.tw_end, self.dur, self.value, self.disc]
        rows += [self.dend if self.dend is not None else np.zeros(n), self.d0]
        self._T = np.ascontiguousarray(np.vstack(rows), dtype=float)
        self._P = np.array(
            [self.t0, self.speed, self.t_end, float(self.dend is not None), EPS], dtype=float
        )
        self._Dm = np.ascontiguousarray(self.D, dtype=float)
        self._DT = np.ascontiguousarray(self.view.tasks.into, dtype=float)  # shared, read-only
        self._demand = np.asarray(self.demand, dtype=float)
        self._capacity = float(self.capacity)
        self._gap_row = K.gap_row
        self._G = np.empty((0, n))
        self._E = np.empty((0, n))
        self._tdr_rows(len(self.tasks) + 1)
        self._tdr_gap(*range(len(self.tasks) + 1))

    def _tdr_consts(self) -> tuple[np.ndarray, ...]:
        """The compiled scorer's arrays after ``tasks`` and ``times``: G, E, T, D, D's
        transpose, P (allocators/_tdr_kernel.py)."""
        return self._G, self._E, self._T, self._Dm, self._DT, self._P

    def _tdr_rows(self, rows: int) -> None:
        """Room for at least ``rows`` gap rows (doubling, at most one per possible gap)."""
        have = self._G.shape[0]
        if have >= rows:
            return
        new = max(rows, min(2 * have, self.limit + 1), 4)
        for name in ("_G", "_E"):
            old = getattr(self, name)
            grown = np.empty((new, old.shape[1]))
            grown[:have] = old
            setattr(self, name, grown)

    def _tdr_gap(self, *ks: int) -> None:
        """Rows ``ks`` of the gap cache for the current route. With fixed start times a gap
        depends only on its two neighbours, so other rows stand when a task is inserted or
        removed."""
        tasks = np.array(self.tasks, dtype=np.int64)
        times = np.array(self.times, dtype=float)
        for k in ks:
            self._gap_row(k, len(tasks), tasks, times, *self._tdr_consts())

    def cbba_fill(self, ident: int, y: np.ndarray, z: np.ndarray) -> list[int]:
        """CBBA's bundle construction on a ``tdr`` route, compiled (``_tdr_kernel.cbba_bundle``,
        which documents the rule): insert tasks while their score outbids ``(y, z)``, updating
        ``y`` and ``z``. Returns the tasks added, in order."""
        from allocators import _tdr_kernel as K
        from harness.numerics import TIE_RTOL

        if self._G is None:
            self._tdr_start()
        added: list[int] = []
        while not self.full:
            L = len(self.tasks)
            self._tdr_rows(min(self.limit, L + 8) + 1)
            stop = min(self.limit, self._G.shape[0] - 1)
            tasks = np.zeros(stop + 1, dtype=np.int64)
            times = np.zeros(stop + 1)
            tasks[:L], times[:L] = self.tasks, self.times
            out = np.zeros(stop - L, dtype=np.int64)
            free = self.allowed & ~self.in_path
            got = K.cbba_bundle(
                ident, L, stop, tasks, times, *self._tdr_consts(),
                free, float(self.load), self._demand, self._capacity, y, z, TIE_RTOL, out,
            )  # fmt: skip
            self.tasks, self.times = tasks[: L + got].tolist(), times[: L + got].tolist()
            new = out[:got].tolist()
            for task in new:  # the load as insert() sums it, task by task
                self.in_path[task] = True
                self.load += self.demand[task]
            added += new
            if L + got < stop or got == 0:
                break
        return added

    def _can_finish(self, est: np.ndarray) -> np.ndarray:
        after = est + self.dur
        if self.dend is not None:
            return after + self.dend / self.speed <= self.t_end + EPS
        return after <= self.t_end + EPS

    def _slack(self) -> tuple[np.ndarray, np.ndarray, float]:
        """Forward slack of each path position (how far its start may be pushed without
        breaking a later window or the return deadline) and the waiting time after it."""
        L = len(self.tasks)
        slack = np.zeros(L)
        wait_after = np.zeros(L)
        end_arrival = self.completion()
        nxt_slack = self.t_end - end_arrival if math.isfinite(self.t_end) else math.inf
        nxt_wait = 0.0  # waiting before the next stop's start (none at the end)
        cum_wait = 0.0  # waiting at every later stop
        for k in range(L - 1, -1, -1):
            j = self.tasks[k]
            own = self.tw_end[j] - self.times[k]
            # a push of d here reaches the next stop as max(0, d - its waiting)
            slack[k] = min(own, nxt_wait + nxt_slack)
            wait_after[k] = cum_wait
            if k > 0:
                prev = self.tasks[k - 1]
                arrive = self.times[k - 1] + self.dur[prev] + self.D[prev, j] / self.speed
            else:
                arrive = self.t0 + self.d0[j] / self.speed
            w = max(0.0, self.times[k] - arrive)
            nxt_slack, nxt_wait, cum_wait = slack[k], w, cum_wait + w
        return slack, wait_after, end_arrival

    # -- changes ---------------------------------------------------------------------------
    def insert(self, task: int, position: int, start: float) -> None:
        self.tasks.insert(position, task)
        self.times.insert(position, float(start))
        self.in_path[task] = True
        self.load += self.demand[task]
        if self._G is not None:  # the gap the task went into splits in two; others stand
            L = len(self.tasks)
            self._tdr_rows(L + 1)
            self._G[position + 2 : L + 1] = self._G[position + 1 : L]
            self._E[position + 2 : L + 1] = self._E[position + 1 : L]
            self._tdr_gap(position, position + 1)
        if self.mode in ("min_sum", "min_max"):
            self._reschedule()

    def remove(self, drop: set[int]) -> None:
        """Remove tasks; in ``tdr`` mode the others keep their start times."""
        gone = [k for k, t in enumerate(self.tasks) if t in drop]
        old_len = len(self.tasks)
        for p in reversed(gone):
            task = self.tasks.pop(p)
            self.times.pop(p)
            self.in_path[task] = False
            self.load -= self.demand[task]
        if self._G is not None and gone:
            self._tdr_merge(gone, old_len)
        if self.mode in ("min_sum", "min_max", "nn"):
            self._reschedule()

    def _tdr_merge(self, gone: list[int], old_len: int) -> None:
        """The gap rows after the stops at old positions ``gone`` left a route of ``old_len``:
        a gap between two stops that were neighbours before keeps its row (old gap ``k`` lies
        before old stop ``k``); each other gap is computed again."""
        dropped = set(gone)
        kept = [k for k in range(old_len) if k not in dropped]
        same, fresh = [], []
        for k in range(len(kept) + 1):
            before = kept[k - 1] if k else -1
            after = kept[k] if k < len(kept) else old_len
            (same if after - before == 1 else fresh).append((k, after))
        if same:
            new, old = (list(c) for c in zip(*same, strict=True))
            self._G[new] = self._G[old]  # the right side is a copy: rows may move either way
            self._E[new] = self._E[old]
        self._tdr_gap(*(k for k, _ in fresh))

    def _reschedule(self) -> None:
        t, prev, out = self.t0, None, []
        for j in self.tasks:
            d = self.d0[j] if prev is None else self.D[prev, j]
            t = max(t + d / self.speed, self.tw_start[j])
            out.append(float(t))
            t += self.dur[j]
            prev = j
        self.times = out
