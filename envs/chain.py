"""RiverSwim (Strehl & Littman 2008), with the transition probabilities and rewards of
Osband, Russo & Van Roy 2013, "(More) Efficient Reinforcement Learning via Posterior
Sampling", NeurIPS (their RiverSwim figure; the numbers most later papers use).

States ``0 .. n-1`` in a row (``Discrete(n)``, default ``n = 6``), two actions (``Discrete(2)``):
0 = *left* (toward state 0), 1 = *right* (toward state n-1). Described for the unmirrored
chain, where a river flows left:

* left (with the current) always moves one state left (state 0 stays put); at state 0 it
  pays ``small_reward`` (default 0.005 = 5/1000).
* right (against the current), probabilities as kwargs with the standard defaults:
    - at state 0: move right w.p. ``p_forward_start`` (0.6), else stay;
    - at 0 < s < n-1: move right w.p. ``p_forward`` (0.35), swept back left w.p.
      ``p_backward`` (0.05), else stay (0.6);
    - at state n-1: stay w.p. ``p_stay_end`` (0.6), else swept back left (0.4);
  taking it at state n-1 pays ``large_reward`` (default 1.0) whatever the outcome.
* rewards depend only on (state, action); every episode starts at state 0.

``mirrored=True`` (task variation) reflects the river: state ``s`` and action ``a`` of the
mirrored chain behave as state ``n-1-s`` and action ``1-a`` of the unmirrored one. Actions keep
their direction (0 still moves toward state 0) but now the river flows right: the start and
the small reward are at state n-1, the large reward at state 0, and *left* is the hard swim.

Episodes are truncated after ``episode_len`` steps; the default ``max(20, 5 * n)`` lets the far
end be reached: by the exact model, always swimming against the current reaches it within
that many steps with probability >= 0.97 for every n in 2..50 (0.974 for n = 6, 0.999 for
n = 50; the median arrival is ~2.5-3.2 n steps), so an optimal agent spends a good part of each
episode at the rich end. (Osband et al. used 20 steps for n = 6, which leaves the far end
unreached in about one episode in six.)

Every step draws exactly one uniform from ``np_random`` whatever the action (so the random
stream does not depend on the policy). ``transition_matrix()`` [n, 2, n] and
``reward_matrix()`` [n, 2] give the exact model; ``optimal_return()`` is finite-horizon value
iteration on it. ``reset(options=...)`` may change every kwarg but ``n``.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from envs.base import ToyEnv, as_bool, as_float, as_int


def default_episode_len(n: int) -> int:
    return max(20, 5 * int(n))


class Chain(ToyEnv):
    FIXED_KWARGS = ("n",)
    TASK_KWARGS = ("episode_len", "mirrored", "small_reward", "large_reward",
                   "p_forward", "p_backward", "p_forward_start", "p_stay_end")

    def __init__(self, n: int = 6, episode_len: int | None = None, mirrored: bool = False,
                 small_reward: float = 0.005, large_reward: float = 1.0,
                 p_forward: float = 0.35, p_backward: float = 0.05,
                 p_forward_start: float = 0.6, p_stay_end: float = 0.6,
                 render_mode: str | None = None):
        super().__init__(render_mode)
        self.n = as_int(n, "n", low=2)
        self.observation_space = spaces.Discrete(self.n)
        self.action_space = spaces.Discrete(2)
        self._configure({
            "n": self.n, "episode_len": episode_len,
            "mirrored": mirrored, "small_reward": small_reward, "large_reward": large_reward,
            "p_forward": p_forward, "p_backward": p_backward,
            "p_forward_start": p_forward_start, "p_stay_end": p_stay_end,
        })
        self._s = self.start_state
        self._t = 0

    # ---- task -----------------------------------------------------------------------------
    @property
    def task(self) -> dict[str, Any]:
        return {"n": self.n, **self._task}

    def _configure(self, kwargs: dict[str, Any]) -> None:
        task = {
            "episode_len": default_episode_len(self.n) if kwargs["episode_len"] is None
            else as_int(kwargs["episode_len"], "episode_len", low=1),
            "mirrored": as_bool(kwargs["mirrored"], "mirrored"),
            "small_reward": as_float(kwargs["small_reward"], "small_reward"),
            "large_reward": as_float(kwargs["large_reward"], "large_reward"),
            "p_forward": as_float(kwargs["p_forward"], "p_forward", low=0.0, high=1.0),
            "p_backward": as_float(kwargs["p_backward"], "p_backward", low=0.0, high=1.0),
            "p_forward_start": as_float(kwargs["p_forward_start"], "p_forward_start", low=0.0, high=1.0),
            "p_stay_end": as_float(kwargs["p_stay_end"], "p_stay_end", low=0.0, high=1.0),
        }
        if task["p_forward"] + task["p_backward"] > 1.0:
            raise ValueError(f"p_forward + p_backward = {task['p_forward'] + task['p_backward']} must be <= 1")
        self._task = task
        self.episode_len = task["episode_len"]
        self.mirrored = task["mirrored"]
        P, R = self._model()
        self._P, self._R = P, R
        n = self.n
        # Step tables in pure Python: for (s, a), the next state is s-1 if u < lo, s if u < hi,
        # else s+1 (u uniform in [0, 1)); the model never jumps further than one state.
        self._lo = [[float(P[s, a, s - 1]) if s > 0 else 0.0 for a in range(2)] for s in range(n)]
        self._hi = [[self._lo[s][a] + float(P[s, a, s]) for a in range(2)] for s in range(n)]
        for s in range(n):
            for a in range(2):
                if s == n - 1 or P[s, a, s + 1] == 0.0:
                    self._hi[s][a] = 2.0  # never step past the end, whatever rounding does
        self._Rl = R.tolist()
        self.start_state = n - 1 if self.mirrored else 0

    def _model(self) -> tuple[np.ndarray, np.ndarray]:
        n, t = self.n, self._task
        P = np.zeros((n, 2, n))
        R = np.zeros((n, 2))
        for s in range(n):  # the unmirrored chain
            P[s, 0, max(s - 1, 0)] = 1.0
            if s == 0:
                P[0, 1, 1] += t["p_forward_start"]
                P[0, 1, 0] += 1.0 - t["p_forward_start"]
            elif s == n - 1:
                P[s, 1, s] += t["p_stay_end"]
                P[s, 1, s - 1] += 1.0 - t["p_stay_end"]
            else:
                P[s, 1, s + 1] = t["p_forward"]
                P[s, 1, s - 1] = t["p_backward"]
                P[s, 1, s] = 1.0 - t["p_forward"] - t["p_backward"]
        R[0, 0] = t["small_reward"]
        R[n - 1, 1] += t["large_reward"]
        if self.mirrored:  # state s, action a  <->  state n-1-s, action 1-a
            P = P[::-1, ::-1, ::-1].copy()
            R = R[::-1, ::-1].copy()
        return P, R

    def transition_matrix(self) -> np.ndarray:
        """``P[s, a, s']``: probability of moving to ``s'`` when taking ``a`` in ``s`` (rows sum to 1)."""
        return self._P.copy()

    def reward_matrix(self) -> np.ndarray:
        """``R[s, a]``: the (deterministic) reward of taking ``a`` in ``s``."""
        return self._R.copy()

    def optimal_values(self) -> np.ndarray:
        """``V[k, s]``: best expected return with ``k`` steps left from ``s`` (k = 0..episode_len),
        by finite-horizon value iteration on the exact model."""
        V = np.zeros((self.episode_len + 1, self.n))
        for k in range(1, self.episode_len + 1):
            V[k] = (self._R + self._P @ V[k - 1]).max(axis=1)
        return V

    def optimal_return(self) -> float:
        """Expected return of an optimal (non-stationary) policy over one episode."""
        return float(self.optimal_values()[-1, self.start_state])

    # ---- dynamics -------------------------------------------------------------------------
    def _start_episode(self, seeded: bool) -> int:
        self._s = self.start_state
        self._t = 0
        return self._s

    def step(self, action):
        a = self._begin_step(action)
        s = self._s
        u = self._np_random.random()
        reward = self._Rl[s][a]
        if u < self._lo[s][a]:
            s2 = s - 1
        elif u < self._hi[s][a]:
            s2 = s
        else:
            s2 = s + 1
        self._s = s2
        terminated, truncated = self._end_step()
        return s2, reward, terminated, truncated, {}

    # ---- state ----------------------------------------------------------------------------
    @property
    def pos(self) -> int:
        return self._s

    def _dynamic_state(self) -> dict[str, Any]:
        return {"s": self._s, "t": self._t}

    def _set_dynamic_state(self, state: dict[str, Any]) -> None:
        self._s = as_int(state["s"], "state s", low=0, high=self.n - 1)
        self._t = as_int(state["t"], "state t", low=0)

    def _render_text(self) -> str:
        cells = ["A" if s == self._s else "o" for s in range(self.n)]
        small, large = (self.n - 1, 0) if self.mirrored else (0, self.n - 1)
        return " ".join(cells) + f"   (small reward at {small}, large at {large})\n"
