"""Semantic deduplication by probing: run every program on fixed probe histories, hash what it says.

Two programs that give the same action distribution after every prefix of every probe history
are treated as one function; their prior weights are *added* (the class keeps the summed weight
and its shortest member as representative), never dropped. Probe histories are drawn to look like
the environment the mixture will see (``EnvProfile``: number of states and actions, whether every
step ends an episode, time limit, rewards), because equivalence is relative to the histories that
can occur: in a bandit every step is terminal, so the discount of a TD program never matters.

The probes (by default 4 x 600 steps, ``PROBE_STYLES``) revisit few states (so values propagate
and argmax sets change many times), mix random and fixed rewards over every reward value of the
profile, and mix uniform and skewed action choices; distributions are quantised to 2^-32 before
hashing (two 64-bit hashes per program), so float noise at 1e-16 does not split equal programs.

Probing is a test of equivalence on finitely many histories, so it can merge programs that
would differ only on histories the probes never show ("near-equivalent" programs, e.g. step
sizes whose value orderings coincide on 0/1 rewards for thousands of steps). The rate is
measured in tests and reported: doubling the probes splits a few percent of the classes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np


@dataclass(frozen=True)
class EnvProfile:
    """What the programs will be run on: spaces and the shape of episodes and rewards."""

    n_states: int
    n_actions: int
    bandit: bool = False                # every step terminates (one pull per episode)
    episode_len: int | None = 20        # time limit (truncation) of non-bandit episodes; None = none
    can_terminate: bool = False         # episodes may end in a terminal state before the limit
    rewards: tuple[float, ...] = (0.0, 1.0)

    def __post_init__(self) -> None:
        if self.n_states < 1 or self.n_actions < 2:
            raise ValueError(f"profile needs >= 1 state and >= 2 actions, got {self.n_states}, {self.n_actions}")
        if self.bandit and self.n_states != 1:
            raise ValueError("a bandit profile has exactly one observation")


def time_limit(env: Any) -> int | None:
    """The env's own time limit: its ``episode_len`` if it has one, else the ``TimeLimit``
    registered with it (``spec.max_episode_steps``, e.g. FrozenLake's 100), else None (no limit)."""
    own = getattr(env.unwrapped, "episode_len", None)
    if own is not None:
        return int(own)
    spec = getattr(env, "spec", None)
    limit = getattr(spec, "max_episode_steps", None)
    return None if limit is None else int(limit)


def profile_for_env(env_id: str, **env_kwargs: Any) -> EnvProfile:
    """The profile of a registered toy env (spaces from the env itself)."""
    import envs  # noqa: F401
    import gymnasium as gym

    env = gym.make(env_id, **env_kwargs)
    try:
        obs, act = env.observation_space, env.action_space
        if not isinstance(act, gym.spaces.Discrete) or not isinstance(obs, gym.spaces.Discrete):
            raise ValueError(f"{env_id}: the program grammar needs Discrete observations and actions, got {obs}, {act}")
        S, A = int(obs.n), int(act.n)
        base = env.unwrapped
        if "Bandit" in env_id:
            return EnvProfile(1, A, bandit=True, episode_len=None, can_terminate=True, rewards=(0.0, 1.0))
        ep_len = time_limit(env)
        if "Chain" in env_id:
            rw = (0.0, float(getattr(base, "small_reward", 0.005)), float(getattr(base, "large_reward", 1.0)))
            return EnvProfile(S, A, episode_len=ep_len, can_terminate=False, rewards=rw)
        if "DarkRoom" in env_id:
            return EnvProfile(S, A, episode_len=ep_len, can_terminate=False, rewards=(0.0, 1.0))
        return EnvProfile(S, A, episode_len=ep_len, can_terminate=True, rewards=(0.0, 1.0))
    finally:
        env.close()


@dataclass
class Probe:
    obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    next_obs: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray

    def __len__(self) -> int:
        return int(self.action.size)


#: Per probe (cycled): (fewest, most) states visited, probability that a reward is drawn at
#: random rather than from the probe's fixed reward of (state, action), probability of a
#: skewed (not uniform) action choice. Random rewards make the reward sequences of (s, a)
#: varied (step sizes and discounts show), fixed ones make values settle (orderings show), few
#: states make every (s, a) visited often (counts and bonuses show).
PROBE_STYLES = ((2, 3, 1.0, 0.0), (3, 5, 0.15, 0.5), (2, 4, 0.5, 0.0), (4, 6, 0.3, 0.5))


def probe_histories(profile: EnvProfile, *, n: int = 4, length: int = 600, seed: int = 12345) -> list[Probe]:
    """Fixed, seeded probe histories shaped like ``profile``'s environment."""
    rng = np.random.default_rng(seed)
    S, A = profile.n_states, profile.n_actions
    rewards = np.asarray(profile.rewards, dtype=np.float64)
    out = []
    for k in range(n):
        lo, hi, p_rand, p_skew = PROBE_STYLES[k % len(PROBE_STYLES)]
        used = S if S <= hi else int(rng.integers(lo, hi + 1))
        states = rng.choice(S, size=used, replace=False)
        T = rng.integers(used, size=(used, A))           # preferred successor of (state, action)
        Rfix = rng.choice(rewards, size=(used, A))       # fixed reward of (state, action)
        bias = rng.random(A)
        obs, act, rew, nxt, term, trunc = [], [], [], [], [], []
        i, t_ep = int(rng.integers(used)), 0
        for t in range(length):
            if rng.random() < p_skew:
                a = int(np.argmax(bias + rng.random(A)))  # some actions much more often than others
            else:
                a = int(rng.integers(A))
            r = float(rng.choice(rewards) if rng.random() < p_rand else Rfix[i, a])
            j = int(T[i, a] if rng.random() < 0.7 else rng.integers(used))
            t_ep += 1
            if profile.bandit:
                te, tr = True, False
            else:
                te = bool(profile.can_terminate and rng.random() < 0.03)
                tr = bool(not te and profile.episode_len is not None and t_ep >= profile.episode_len)
            obs.append(states[i]); act.append(a); rew.append(r); nxt.append(states[j]); term.append(te); trunc.append(tr)
            if te or tr:
                i, t_ep = int(rng.integers(used)), 0
            else:
                i = j
        out.append(Probe(np.array(obs, dtype=np.int64), np.array(act, dtype=np.int64), np.array(rew),
                         np.array(nxt, dtype=np.int64), np.array(term), np.array(trunc)))
    return out


def _mults(A: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.integers(1, 2**62, size=A, dtype=np.int64).astype(np.uint64) * np.uint64(2) + np.uint64(1))


def fingerprint_engines(engines: Sequence[Any], probes: Sequence[Probe], n_actions: int, *, progress: bool = False) -> list[np.ndarray]:
    """[n, 2] uint64 fingerprints of every hypothesis of every engine over the probes (engines are
    reset before each probe and left reset)."""
    m1, m2 = _mults(n_actions, 1), _mults(n_actions, 2)
    P1, P2 = np.uint64(0x100000001B3), np.uint64(0x9E3779B97F4A7C15)
    hs = [np.zeros((e.n, 2), dtype=np.uint64) for e in engines]
    total = sum(len(p) for p in probes)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="probing", unit="step", unit_scale=True, mininterval=0.5)
    scale = float(2**32)
    with np.errstate(over="ignore"):
        for probe in probes:
            for e in engines:
                e.reset()
            for t in range(len(probe)):
                s, a = int(probe.obs[t]), int(probe.action[t])
                for e, h in zip(engines, hs):
                    if e.n == 0:
                        continue
                    e.prepare(s)
                    q = np.rint(e.all_probs_am() * scale).astype(np.uint64)   # [A, n]
                    v1, v2 = q[0] * m1[0], q[0] * m2[0]
                    for k in range(1, n_actions):  # rows: a reduce over a short axis is slow
                        v1 += q[k] * m1[k]
                        v2 += q[k] * m2[k]
                    h[:, 0] = h[:, 0] * P1 + v1
                    h[:, 1] = h[:, 1] * P2 + v2
                for e in engines:
                    e.advance(s, a, float(probe.reward[t]), int(probe.next_obs[t]), bool(probe.terminated[t]),
                              bool(probe.truncated[t]))
                if bar is not None and t % 64 == 0:
                    bar.update(min(64, len(probe) - t))
            for e in engines:
                e.reset()
    if bar is not None:
        bar.close()
    for e, h in zip(engines, hs):
        salt = getattr(e, "row_salt", None)
        if salt is not None:    # behaviour the probes are too short to show (see ``TDEngine.row_salt``)
            s = salt()
            h[:, 0] ^= s
            h[:, 1] ^= s * P2
    return hs


__all__ = ["EnvProfile", "profile_for_env", "Probe", "probe_histories", "fingerprint_engines"]
