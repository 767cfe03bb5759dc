"""Atari under one evaluation protocol: Machado et al. (2018), as Dopamine follows it.

    import envs
    env = envs.make("ALE/Breakout-v5")        # -> envs.atari.make_atari("ALE/Breakout-v5")
    obs, _ = env.reset(seed=0)                 # uint8 [4, 84, 84]: the 4 newest frames, oldest first

The protocol ("Revisiting the Arcade Learning Environment", Machado, Bellemare, Talvitie,
Veness, Hausknecht & Bowling, JAIR 2018; Dopamine's ``create_atari_environment``):

* ``ALE/<Game>-v5`` with **sticky actions** (``repeat_action_probability=0.25``, applied by
  the emulator on every frame);
* the **full 18-action set** for every game (so Breakout, Space Invaders and Pong share one
  action space and a network can be transplanted from one game to another);
* an episode ends at **game over** (no life-loss terminals, no fire-on-reset, no no-op starts)
  and is truncated after 108,000 frames (27,000 agent steps, the v5 limit);
* **frame skip 4** with a max over the last two frames, **84x84 grayscale** (area
  interpolation), no reward clipping in the env (a learner may clip; returns are full game
  scores), and a **4-frame stack** (padded at reset with the first frame).

Preprocessing is gymnasium's own ``AtariPreprocessing`` and ``FrameStackObservation`` on
ale-py's ``AtariEnv`` (frameskip 1 underneath, so stickiness acts per emulator frame); nothing
is re-implemented here. The outer wrapper adds exact save/restore (``get_state``/``set_state``:
the emulator state including its RNG, the max-pool buffers, lives and the frame stack) so a
killed recording resumes bit-identically, and ``newest_frame`` (the part of an observation a
history stores: each frame once, never stacked; ``frame_stacks`` rebuilds stacks by index).
"""
from __future__ import annotations

import os
import re
import warnings
from typing import Any

import ale_py  # importing it also registers the ALE/ ids with gymnasium
import gymnasium as gym
import numpy as np
from ale_py import roms
from ale_py.registration import rom_id_to_name
from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

#: The protocol's settings (documented in the module docstring).
PROTOCOL = {
    "name": "Machado et al. 2018 (Dopamine): sticky actions 0.25, full 18 actions, game-over "
            "termination, frame skip 4 (max-pool 2), 84x84 grayscale, 4-frame stack",
    "repeat_action_probability": 0.25,
    "full_action_space": True,
    "frame_skip": 4,
    "screen_size": 84,
    "frame_stack": 4,
    "max_num_frames_per_episode": 108_000,
    "terminal_on_life_loss": False,
    "noop_max": 0,
}
FULL_ACTIONS = 18
_ID = re.compile(r"^ALE/([A-Za-z0-9]+)-v5$")


class AtariError(gym.error.Error):
    """An Atari env that cannot be made (unknown game, missing ROM, wrong id or option)."""


def _rom_id(game: str) -> str:
    """``SpaceInvaders`` -> ``space_invaders`` (ale-py's ROM naming)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", game).lower()


def known_games() -> list[str]:
    """CamelCase names of the games ale-py can run as ``ALE/<Game>-v5``."""
    return sorted(rom_id_to_name(r) for r in roms.get_all_rom_ids())


class AtariProtocol(gym.Wrapper):
    """Outermost wrapper: exact state save/restore and the frame a history stores."""

    def __init__(self, env: gym.Env, *, preprocessing: Any, stack: Any):
        super().__init__(env)
        self._pre = preprocessing
        self._stack = stack

    @property
    def ale(self) -> Any:
        return self.env.unwrapped.ale

    @staticmethod
    def newest_frame(obs: Any) -> np.ndarray:
        """The frame a history stores for a stacked observation (its newest, ``obs[-1]``)."""
        return np.asarray(obs)[-1]

    def get_state(self) -> dict[str, Any]:
        """Everything the next steps depend on, as arrays and JSON values (no pickles)."""
        ale_state = self.ale.cloneState(include_rng=True).serialize()
        base = self.env.unwrapped
        np_random = base._np_random.bit_generator.state if base._np_random is not None else None
        return {
            "ale": np.frombuffer(ale_state, dtype=np.uint8).copy(),
            "np_random": np_random,
            "pool": np.stack([np.asarray(b) for b in self._pre.obs_buffer]),
            "lives": int(self._pre.lives),
            "game_over": bool(self._pre.game_over),
            "frames": np.stack([np.asarray(f) for f in self._stack.obs_queue]),
            "padding": np.asarray(self._stack.padding_value).copy(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.ale.restoreState(ale_py.ALEState(np.asarray(state["ale"], dtype=np.uint8).tobytes()))
        base = self.env.unwrapped
        if state.get("np_random") is not None:
            if base._np_random is None:
                base._np_random = np.random.Generator(np.random.PCG64())
            base._np_random.bit_generator.state = state["np_random"]
        pool = np.asarray(state["pool"])
        for i, b in enumerate(self._pre.obs_buffer):
            b[...] = pool[i]
        self._pre.lives = int(state["lives"])
        self._pre.game_over = bool(state["game_over"])
        frames = np.asarray(state["frames"])
        self._stack.obs_queue.clear()
        for f in frames:
            self._stack.obs_queue.append(np.array(f))
        self._stack.padding_value = np.array(state["padding"])


def make_atari(
    env_id: str,
    *,
    repeat_action_probability: float = PROTOCOL["repeat_action_probability"],
    full_action_space: bool = PROTOCOL["full_action_space"],
    frame_stack: int = PROTOCOL["frame_stack"],
    max_num_frames_per_episode: int = PROTOCOL["max_num_frames_per_episode"],
    render_mode: str | None = None,
) -> gym.Env:
    """Make ``ALE/<Game>-v5`` under the protocol of the module docstring.

    The keyword arguments exist to *state* the protocol in a history's metadata and for
    ablations; their defaults are the protocol. Raises ``AtariError`` (one clear line) for an
    id that is not ``ALE/<Game>-v5``, an unknown game or a missing ROM."""
    m = _ID.match(env_id)
    if m is None:
        raise AtariError(f"{env_id!r} is not an Atari id of the form ALE/<Game>-v5 (e.g. ALE/Breakout-v5)")
    game = m.group(1)
    rom = _rom_id(game)
    if rom not in roms.get_all_rom_ids():
        close = [g for g in known_games() if g.lower().startswith(game.lower()[:3])]
        hint = f"; did you mean {', '.join(close[:5])}?" if close else ""
        raise AtariError(f"unknown Atari game {game!r} in {env_id!r}{hint} ({len(known_games())} games are known)")
    if not 0.0 <= float(repeat_action_probability) <= 1.0:
        raise AtariError(f"repeat_action_probability must be in [0, 1], got {repeat_action_probability}")
    if int(frame_stack) < 1:
        raise AtariError(f"frame_stack must be >= 1, got {frame_stack}")
    roms_dir = os.environ.get("ALE_ROMS_DIR") or os.path.dirname(roms.__file__)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            path = roms.get_rom_path(rom)
    except (OSError, NotADirectoryError) as e:
        raise AtariError(f"ROM for {game!r} is missing or unreadable in {roms_dir} "
                         f"({' '.join(str(e).split())}); reinstall ale-py or set ALE_ROMS_DIR") from None
    if path is None or not os.path.exists(path):
        raise AtariError(f"ROM for {game!r} ({rom}.bin) not found in {roms_dir}; reinstall ale-py or set ALE_ROMS_DIR")
    try:  # here, not at the top: a missing OpenCV is reported as a one-line AtariError
        import cv2  # noqa: F401
    except ImportError:
        raise AtariError("Atari preprocessing needs OpenCV: pip install opencv-python-headless") from None

    base = gym.make(
        env_id,
        frameskip=1,  # AtariPreprocessing skips (and max-pools); stickiness stays per frame
        repeat_action_probability=float(repeat_action_probability),
        full_action_space=bool(full_action_space),
        max_num_frames_per_episode=int(max_num_frames_per_episode),
        render_mode=render_mode,
        disable_env_checker=True,
    )
    pre = AtariPreprocessing(
        base,
        noop_max=PROTOCOL["noop_max"],
        frame_skip=PROTOCOL["frame_skip"],
        screen_size=PROTOCOL["screen_size"],
        terminal_on_life_loss=PROTOCOL["terminal_on_life_loss"],
        grayscale_obs=True,
        grayscale_newaxis=False,
        scale_obs=False,
    )
    stack = FrameStackObservation(pre, int(frame_stack), padding_type="reset")
    return AtariProtocol(stack, preprocessing=pre, stack=stack)


def stack_indices(episode_start: np.ndarray, steps: np.ndarray, k: int) -> np.ndarray:
    """Row indices of the ``k`` frames stacked at each of ``steps`` (oldest first): rows
    ``t-k+1 .. t``, clamped to the episode's first row (the reset padding of the stack)."""
    steps = np.asarray(steps, dtype=np.int64)
    idx = steps[:, None] + np.arange(1 - k, 1, dtype=np.int64)[None, :]
    return np.maximum(idx, np.asarray(episode_start, dtype=np.int64)[:, None])


def frame_stacks(history: Any, steps: Any, k: int = PROTOCOL["frame_stack"]) -> np.ndarray:
    """The stacked observations ``[len(steps), k, 84, 84]`` the teacher saw at ``steps`` of a
    history that stores one frame per step (reads only the rows it needs from the memory map)."""
    steps = np.atleast_1d(np.asarray(steps, dtype=np.int64))
    starts = episode_starts(history)
    first = starts[np.searchsorted(starts, steps, side="right") - 1]
    idx = stack_indices(first, steps, k)
    return np.asarray(history.obs[idx.ravel()]).reshape(len(steps), k, *history.obs.shape[1:])


def episode_starts(history: Any) -> np.ndarray:
    """First row of every stretch that a frame stack may not cross: a new episode, or a new
    segment (a task switch starts a fresh env even when the last episode was cut short)."""
    ep = np.asarray(history.episode)
    seg = np.asarray(history.segment)
    if len(ep) == 0:
        return np.zeros(0, np.int64)
    return np.flatnonzero(np.r_[True, (ep[1:] != ep[:-1]) | (seg[1:] != seg[:-1])])

__all__ = ["PROTOCOL", "FULL_ACTIONS", "AtariError", "AtariProtocol", "make_atari", "known_games",
           "stack_indices", "frame_stacks", "episode_starts"]
