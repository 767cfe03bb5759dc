"""Task distributions of the toy envs: seeded, disjoint train/test splits, and optimal returns.

A task is a dict of env kwargs that fully specifies it (JSON-serialisable), so
``gym.make(env_id, **task)`` builds it and ``env.reset(options=task)`` switches an existing env
of the same size to it.

    split = task_split("hypospace/DarkRoom-v0", seed=0, size=9)   # 64 train / 16 test goals
    optimal_return("hypospace/DarkRoom-v0", **split.test[0])     # 20 - distance to the goal

What ``task_split`` draws, per env (``test_fraction`` rounds half up and always leaves at
least one task on each side, so tiny sizes still give non-empty train and test):

* ``hypospace/DarkRoom-v0`` (``size=9, episode_len=20, test_fraction=0.2``): every cell but
  the start is a goal; shuffled by the seed, the first 20% are the test goals (9x9: 64/16,
  3x3: 6/2, 17x17: 230/58).
* ``hypospace/Bandit-v0`` (``n_arms=10, n_train=1000, n_test=200``): mean vectors drawn
  i.i.d. U[0, 1] (distinct with probability 1; checked).
* ``hypospace/DarkKeyToDoor-v0`` (``size=9, episode_len=50, test_fraction=0.2, n_train=None,
  n_test=None``): every ordered (key, door) pair of distinct cells, shuffled, 20% test
  (9x9: 5184/1296); ``n_train``/``n_test`` keep only the first that many of each side.
* ``hypospace/Chain-v0`` (``n=6, episode_len=None`` -> the env default, ``test_fraction=0.2``):
  ``mirrored`` x the slip settings in ``CHAIN_SLIPS`` (8 variations: 6 train / 2 test).

The split is a function of (env_id, seed, kwargs) only (numpy's ``default_rng(seed)``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

ENV_IDS = ("hypospace/Bandit-v0", "hypospace/DarkRoom-v0", "hypospace/DarkKeyToDoor-v0", "hypospace/Chain-v0")

#: (p_forward, p_backward) of the interior states of the chain; the first is the standard
#: RiverSwim, the others keep a similar drift against the current (0.28-0.35 states/step) so
#: the far end stays reachable within the default episode length.
CHAIN_SLIPS: tuple[tuple[float, float], ...] = ((0.35, 0.05), (0.30, 0.02), (0.40, 0.08), (0.45, 0.10))


@dataclass
class TaskSplit:
    """Disjoint lists of tasks (each a dict of env kwargs)."""

    train: list[dict[str, Any]]
    test: list[dict[str, Any]]
    env_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)  # seed and kwargs that made the split
    val: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"env_id": self.env_id, "params": dict(self.params), "train": self.train, "val": self.val,
                "test": self.test}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TaskSplit":
        return cls(train=list(d["train"]), test=list(d["test"]), env_id=d.get("env_id"), params=dict(d.get("params", {})),
                   val=list(d.get("val", [])))

    def with_validation(self, n_val: int) -> "TaskSplit":
        """Three disjoint task sets: the first ``n_val`` training tasks become validation tasks
        (for choosing presets and settings), the rest stay training tasks; the test tasks are
        untouched, so they are the same tasks whatever ``n_val`` is, and are scored once."""
        n_val = int(n_val)
        if not 0 <= n_val < len(self.train):
            raise ValueError(f"cannot take {n_val} validation tasks from {len(self.train)} training tasks "
                             "(at least one must stay for training)")
        return TaskSplit(train=self.train[n_val:], test=list(self.test), env_id=self.env_id,
                         params={**self.params, "n_val": n_val}, val=self.train[:n_val])


def _env_class(env_id: str):
    if env_id == "hypospace/Bandit-v0":
        from envs.bandit import BernoulliBandit
        return BernoulliBandit
    if env_id == "hypospace/DarkRoom-v0":
        from envs.darkroom import DarkRoom
        return DarkRoom
    if env_id == "hypospace/DarkKeyToDoor-v0":
        from envs.keytodoor import DarkKeyToDoor
        return DarkKeyToDoor
    if env_id == "hypospace/Chain-v0":
        from envs.chain import Chain
        return Chain
    raise ValueError(f"env_id={env_id!r} has no task distribution (known: {', '.join(ENV_IDS)})")


def _n_test(n_tasks: int, test_fraction: Any) -> int:
    from envs.base import as_float

    frac = as_float(test_fraction, "test_fraction", low=0.0, high=1.0)
    if not 0.0 < frac < 1.0:
        raise ValueError(f"test_fraction={frac} must be strictly between 0 and 1")
    if n_tasks < 2:
        raise ValueError(f"only {n_tasks} task(s): cannot split into non-empty train and test")
    return min(max(int(np.floor(n_tasks * frac + 0.5)), 1), n_tasks - 1)


def _take(tasks: list[dict], order: np.ndarray, n_test: int) -> tuple[list[dict], list[dict]]:
    shuffled = [tasks[i] for i in order]
    return shuffled[n_test:], shuffled[:n_test]


def _check_kwargs(env_id: str, given: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ValueError(f"task_split({env_id!r}) got unknown kwarg(s) {unknown} (allowed: {list(allowed)})")


def task_split(env_id: str, *, seed: int = 0, **size_kwargs: Any) -> TaskSplit:
    """Seeded, disjoint train/test split of the tasks of ``env_id`` (see the module docstring)."""
    from envs.base import as_int

    seed = as_int(seed, "seed", low=0)
    cls = _env_class(env_id)
    rng = np.random.default_rng(seed)
    kw = dict(size_kwargs)

    if env_id == "hypospace/DarkRoom-v0":
        _check_kwargs(env_id, kw, ("size", "episode_len", "test_fraction"))
        env = cls(size=kw.get("size", 9), episode_len=kw.get("episode_len", 20))
        size, start = env.size, env.start
        tasks = [{"size": size, "goal": [r, c], "episode_len": env.episode_len}
                 for r in range(size) for c in range(size) if (r, c) != start]
        train, test = _take(tasks, rng.permutation(len(tasks)), _n_test(len(tasks), kw.get("test_fraction", 0.2)))

    elif env_id == "hypospace/Bandit-v0":
        _check_kwargs(env_id, kw, ("n_arms", "n_train", "n_test"))
        n_arms = as_int(kw.get("n_arms", 10), "n_arms", low=2)
        n_train = as_int(kw.get("n_train", 1000), "n_train", low=1)
        n_test = as_int(kw.get("n_test", 200), "n_test", low=1)
        means = rng.random((n_train + n_test, n_arms))
        if len(np.unique(means, axis=0)) != len(means):  # probability ~0, but disjointness is promised
            raise RuntimeError(f"seed {seed} drew a repeated mean vector; use another seed")
        tasks = [{"n_arms": n_arms, "means": row} for row in means.tolist()]
        train, test = tasks[:n_train], tasks[n_train:]

    elif env_id == "hypospace/DarkKeyToDoor-v0":
        _check_kwargs(env_id, kw, ("size", "episode_len", "test_fraction", "n_train", "n_test"))
        env = cls(size=kw.get("size", 9), episode_len=kw.get("episode_len", 50))
        size = env.size
        cells = [[r, c] for r in range(size) for c in range(size)]
        tasks = [{"size": size, "key": k, "door": d, "episode_len": env.episode_len}
                 for k in cells for d in cells if k != d]
        train, test = _take(tasks, rng.permutation(len(tasks)), _n_test(len(tasks), kw.get("test_fraction", 0.2)))
        if kw.get("n_train") is not None:
            train = train[:as_int(kw["n_train"], "n_train", low=1)]
        if kw.get("n_test") is not None:
            test = test[:as_int(kw["n_test"], "n_test", low=1)]

    else:  # Chain
        _check_kwargs(env_id, kw, ("n", "episode_len", "test_fraction"))
        env = cls(n=kw.get("n", 6), episode_len=kw.get("episode_len"))
        base = {k: v for k, v in env.task.items() if k not in ("mirrored", "p_forward", "p_backward")}
        tasks = [{**base, "mirrored": m, "p_forward": pf, "p_backward": pb}
                 for m in (False, True) for pf, pb in CHAIN_SLIPS]
        train, test = _take(tasks, rng.permutation(len(tasks)), _n_test(len(tasks), kw.get("test_fraction", 0.2)))

    return TaskSplit(train=train, test=test, env_id=env_id, params={"seed": seed, **kw})


def optimal_return(env_id: str, **env_kwargs: Any) -> float:
    """Expected return of an optimal policy over one episode of the task ``env_kwargs``.

    Dark Room: ``episode_len - manhattan(start, goal)``; Bandit: the best arm's mean (one pull);
    Dark Key-to-Door: exact expectation over the random start of the shortest-path return;
    Chain: finite-horizon value iteration on the exact transition model."""
    return _env_class(env_id)(**env_kwargs).optimal_return()
