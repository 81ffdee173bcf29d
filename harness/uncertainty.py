"""What agents believe against what is true (docs/uncertainty.md).

Agents plan with *measured* task positions: each agent measures every task with an error that
grows with its distance to the task, drawn from a seeded noise model. The evaluator grades the
plans with the *true* positions, as the CAGA paper (Ozturk et al. 2025, §5.1 and §6) grades its
payoffs on cost matrices without uncertainty.

Models (``[[uncertainty]]`` in a spec, one profile per table; a grid axis like ``[[faults]]``):

``none``       agents see the true positions (the default; trial keys as before).
``lognormal``  the CAGA paper's model. The *level* of uncertainty at distance ``d`` is Liu's
               lognormal uncertainty distribution (the paper's Eq. 9 and Figure 1)
               ``Φ(d) = 1 / (1 + exp(π (e − ln d) / (√3 σ)))``, in [0, 1]: 0.5 at
               ``d = exp(e)`` (36.6 m for the paper's e = 3.6), near 1 past 100 m. A measured
               task is displaced from the true one by ``gain · Φ(d) · X`` in a uniformly random
               direction, ``X ~ LOGN(e, σ)`` (``ln X`` normal with mean ``e``, deviation ``σ``).
               The paper states the LOGN(3.6, 0.6) noise and the level curve but not how they
               combine: this reconstruction is ours (docs/uncertainty.md shows it against the
               paper's Tables 2-4).
``gaussian``   a plain alternative: each coordinate off by a normal error of deviation
               ``rel · d``.

Both models shrink as an agent approaches a task: the error depends on the distance at the
moment of measuring (at a checkpoint, the agent's position then).

Noise is drawn per agent from a generator seeded by (trial seed, draw, agent), so an agent's
beliefs are the same on every runtime and whichever process builds the agent. ``draws`` runs
the trial that many times, each with fresh noise (Monte Carlo): the row stores the means, the
spread and every draw (``trial_draws``, the ``draws`` view).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.errors import SpecError

MODELS = ("none", "lognormal", "gaussian")
#: a spec may not ask for more Monte Carlo draws per trial than this unless
#: ``bench.max_draws`` allows it
MAX_DRAWS_DEFAULT = 100
FIELDS = ("name", "model", "e", "sigma", "gain", "rel", "draws")


@dataclass(frozen=True)
class Uncertainty:
    model: str = "none"
    e: float = 3.6  # lognormal: location of ln X, and of the level curve (ln metres)
    sigma: float = 0.6  # lognormal: scale of ln X and of the level curve
    gain: float = 1.0  # lognormal: metres of error per unit of level and of X
    rel: float = 0.1  # gaussian: deviation per metre of distance
    draws: int = 1  # Monte Carlo draws per trial
    name: str = ""

    @property
    def active(self) -> bool:
        return self.model != "none"

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self.model == "lognormal":
            return f"logn({self.e:g},{self.sigma:g})" + (
                f"x{self.gain:g}" if self.gain != 1 else ""
            )
        if self.model == "gaussian":
            return f"gauss({self.rel:g})"
        return "none"

    def to_dict(self) -> dict[str, Any]:
        """The settings that change what agents believe (part of the trial key); none when the
        model is ``none``."""
        if not self.active:
            return {}
        own = {"lognormal": ("e", "sigma", "gain"), "gaussian": ("rel",)}[self.model]
        return {k: getattr(self, k) for k in ("model", "draws", *own)}

    @classmethod
    def from_dict(
        cls,
        d: dict[str, Any] | None,
        source: str = "spec",
        where: str = "uncertainty",
        max_draws: int = MAX_DRAWS_DEFAULT,
    ) -> Uncertainty:
        """Checked settings; errors name the field and what it takes."""
        d = dict(d or {})
        unknown = sorted(set(d) - set(FIELDS))
        if unknown:
            raise SpecError(
                source, f"{where}.{unknown[0]}", f"one of {', '.join(FIELDS)}", d[unknown[0]]
            )
        model = d.get("model", "none")
        if model not in MODELS:
            raise SpecError(source, f"{where}.model", f"one of {', '.join(MODELS)}", model)
        given = sorted(set(d) - {"name", "model"})
        if model == "none" and given:
            raise SpecError(
                source,
                f"{where}.model",
                f"'lognormal' or 'gaussian' for {given[0]} to mean anything (the model is "
                "'none' unless set)",
                d.get("model", "none"),
            )
        out: dict[str, Any] = {"model": model}
        for key, low in (("e", None), ("sigma", 0.0), ("gain", 0.0), ("rel", 0.0)):
            if key not in d:
                continue
            v = d[key]
            ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            if not ok or (low is not None and (v < low or (key == "sigma" and v == 0))):
                what = "a finite number" + (
                    " > 0" if key == "sigma" else " >= 0" if low is not None else ""
                )
                raise SpecError(source, f"{where}.{key}", what, v)
            out[key] = float(v)
        if "draws" in d:
            v = d["draws"]
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= max_draws:
                raise SpecError(
                    source,
                    f"{where}.draws",
                    f"a whole number of Monte Carlo draws from 1 to {max_draws} "
                    "(bench.max_draws raises the bound)",
                    v,
                )
            out["draws"] = v
        if "name" in d:
            if not isinstance(d["name"], str) or not d["name"]:
                raise SpecError(source, f"{where}.name", "a non-empty string", d["name"])
            out["name"] = d["name"]
        return cls(**out)

    # -- the model ---------------------------------------------------------------------------
    def level(self, distance: np.ndarray) -> np.ndarray:
        """The level of uncertainty at each distance: the paper's Φ (Eq. 9) for
        ``lognormal``; ``rel · d`` for ``gaussian`` (a deviation in metres there)."""
        d = np.asarray(distance, dtype=np.float64)
        if self.model == "lognormal":
            with np.errstate(divide="ignore", over="ignore"):
                z = math.pi * (self.e - np.log(np.maximum(d, 1e-300))) / (math.sqrt(3) * self.sigma)
                return np.where(d > 0, 1.0 / (1.0 + np.exp(z)), 0.0)
        if self.model == "gaussian":
            return self.rel * d
        return np.zeros_like(d)

    def measure(self, true_xyz: np.ndarray, at: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Where an agent at ``at`` measures tasks truly at ``true_xyz`` (n x 3) to be. A
        planar workspace (every z 0) stays planar: only x and y are off there."""
        n = len(true_xyz)
        dims = 3 if np.any(true_xyz[:, 2] != 0) or at[2] != 0 else 2
        d = np.linalg.norm(true_xyz - np.asarray(at, dtype=np.float64)[None, :], axis=1)
        err = np.zeros((n, 3))
        if self.model == "lognormal":
            direction = rng.standard_normal((n, dims))
            norm = np.linalg.norm(direction, axis=1, keepdims=True)
            direction = direction / np.where(norm > 0, norm, 1.0)
            size = self.gain * self.level(d) * rng.lognormal(self.e, self.sigma, size=n)
            err[:, :dims] = direction * size[:, None]
        elif self.model == "gaussian":
            err[:, :dims] = rng.standard_normal((n, dims)) * self.level(d)[:, None]
        return true_xyz + err


NONE = Uncertainty()


@dataclass(frozen=True)
class Belief:
    """One Monte Carlo draw of a trial's beliefs: the model, and the seed every agent's noise
    comes from (the trial seed and the draw number). Sent with the run request, so each agent's
    beliefs are made where the agent is made."""

    model: Uncertainty
    seed: int
    draw: int = 0

    def rng(self, agent: int) -> np.random.Generator:
        digest = hashlib.sha256(json.dumps(["belief", self.seed, self.draw, agent]).encode())
        return np.random.default_rng(int.from_bytes(digest.digest()[:8], "big"))

    def believed_xyz(self, true_xyz: np.ndarray, agent: int, at: np.ndarray) -> np.ndarray:
        """Agent ``agent``'s measurement, from ``at``, of the tasks truly at ``true_xyz``."""
        return self.model.measure(true_xyz, at, self.rng(agent))


def summarise_draws(per_draw: list[dict[str, Any]]) -> dict[str, Any]:
    """The metric columns of a Monte Carlo trial from its draws' columns: a number is the mean
    over the draws that have it, a flag is true only if true in every draw, anything else is
    the first draw's; with the deviation over draws of the objective, gap and coverage."""
    out: dict[str, Any] = {}
    keys = [k for k in per_draw[0]]
    for k in keys:
        vals = [d.get(k) for d in per_draw]
        if all(isinstance(v, bool) for v in vals):
            out[k] = all(vals)
        elif all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in vals if v is not None
        ):
            nums = [float(v) for v in vals if v is not None and math.isfinite(float(v))]
            out[k] = sum(nums) / len(nums) if nums else None
        else:
            out[k] = vals[0]
    for k in ("m_objective", "m_gap", "m_gap_best_known", "m_coverage"):
        nums = [
            float(d[k]) for d in per_draw if d.get(k) is not None and math.isfinite(float(d[k]))
        ]
        if len(nums) > 1:
            mean = sum(nums) / len(nums)
            out[f"{k}_sd"] = math.sqrt(sum((x - mean) ** 2 for x in nums) / (len(nums) - 1))
    out["m_mc_draws"] = len(per_draw)
    return out


#: what each draw keeps in ``trial_draws`` (and the ``draws`` view)
DRAW_COLUMNS = (
    "m_objective",
    "m_gap",
    "m_gap_best_known",
    "m_coverage",
    "m_conflicts",
    "m_feasible",
    "m_messages",
    "m_bytes",
    "m_rounds",
)
