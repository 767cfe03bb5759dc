"""Gymnasium environments of the toy rungs, registered under ``hypospace/`` on import.

    import envs, gymnasium as gym
    env = gym.make("hypospace/DarkRoom-v0", size=9, goal=(2, 7))

Tasks (goals, arm means, ...) are env kwargs; ``envs.tasks`` draws seeded, disjoint
train/test splits of them. Atari goes through ``envs.atari`` (ALE v5, gymnasium's wrappers).
"""
import gymnasium as gym

ENV_IDS = (
    "hypospace/Bandit-v0",
    "hypospace/DarkRoom-v0",
    "hypospace/DarkKeyToDoor-v0",
    "hypospace/Chain-v0",
)

_ENTRY_POINTS = {
    "hypospace/Bandit-v0": "envs.bandit:BernoulliBandit",
    "hypospace/DarkRoom-v0": "envs.darkroom:DarkRoom",
    "hypospace/DarkKeyToDoor-v0": "envs.keytodoor:DarkKeyToDoor",
    "hypospace/Chain-v0": "envs.chain:Chain",
}

for _id, _ep in _ENTRY_POINTS.items():
    if _id not in gym.registry:
        # Episode limits live inside the envs (they are part of the task definition and are
        # reported as truncation), so gymnasium's TimeLimit is not added on top.
        gym.register(id=_id, entry_point=_ep, disable_env_checker=False)



def make(env_id: str, **kwargs):
    """Make any env the project knows: ``hypospace/*`` toy envs and ``ALE/<Game>-v5`` under the
    project's Atari protocol (``envs.atari``). Unknown ids raise ``gymnasium.error.Error``."""
    if env_id.startswith("ALE/"):
        from envs.atari import make_atari

        return make_atari(env_id, **kwargs)
    return gym.make(env_id, **kwargs)


def env_kind(env_id: str) -> str:
    """The family an env belongs to, which decides the teachers and encoders that fit it:
    "bandit", "tabular" (Discrete observations) or "pixels" (Atari)."""
    if env_id.startswith("ALE/"):
        return "pixels"
    if env_id == "hypospace/Bandit-v0":
        return "bandit"
    if env_id in ENV_IDS:
        return "tabular"
    raise gym.error.Error(f"unknown env {env_id!r}")


__all__ = ["ENV_IDS", "make", "env_kind"]
