"""A frozen frame encoder for Atari AD: a small convolutional autoencoder trained once on frame
stacks of the *training* games, then frozen; every history's embeddings are computed once and
cached on disk, so the transformer trains on ``[T, emb_dim]`` vectors (as cheap as Dark Room)
instead of running a CNN over ``batch x context`` stacks at every update.

Why an autoencoder and how it is weighted: a plain MSE autoencoder of Atari screens spends its
capacity on the static background and drops the few pixels that decide the game (ball,
paddle, invaders). The reconstruction error is therefore weighted ``1 + fg_weight`` on pixels
that differ from the training frames' per-pixel median (the background), ``1`` elsewhere.

The encoder records which games' frames it saw (``games``): the transplant question (Q3) needs
to know that no Space Invaders frame ever entered training, the encoder's included.

Files (one directory, written to ``<dir>.partial`` then renamed): ``encoder.safetensors`` (the
encoder half and the embedding's standardisation), ``encoder.json`` (config, games, sha256).
Embedding caches: ``<cache>/atari-embeddings/<encoder sha[:16]>/<history obs sha[:16]>.npy``
(float16, one row per step), written atomically.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

from learners.errors import CheckpointError
from learners.files import read_json, sha256_file, write_json_atomic

FORMAT = "hypospace.atari.frame_encoder/1"


@dataclass
class EncoderConfig:
    """The frozen encoder's shape and its one-off training (every field is a CLI flag)."""

    emb_dim: int = field(default=64, metadata={"help": "frozen encoder: embedding size per frame stack"})
    steps: int = field(default=1500, metadata={"help": "frozen encoder: autoencoder updates"})
    batch_size: int = field(default=64, metadata={"help": "frozen encoder: stacks per autoencoder update"})
    lr: float = field(default=1e-3, metadata={"help": "frozen encoder: Adam learning rate"})
    fg_weight: float = field(default=20.0, metadata={"help": "frozen encoder: extra reconstruction weight on non-background pixels"})
    seed: int = field(default=0, metadata={"help": "frozen encoder: seed of initialisation and sampling"})

    def __post_init__(self) -> None:
        if self.emb_dim < 1 or self.steps < 1 or self.batch_size < 1 or self.lr <= 0 or self.fg_weight < 0:
            raise ValueError("encoder: emb_dim, steps and batch_size must be >= 1, lr > 0, fg_weight >= 0")


class FrameAutoencoder(nn.Module):
    """[N, S, 84, 84] uint8 stacks -> [N, emb_dim] (encoder) -> stacks (decoder, training only)."""

    def __init__(self, frame_stack: int = 4, emb_dim: int = 64, frame_size: int = 84):
        super().__init__()
        if frame_size != 84:
            raise ValueError("the frame autoencoder takes 84x84 frames")
        S = frame_stack
        self.enc = nn.Sequential(nn.Conv2d(S, 32, 8, stride=4), nn.ReLU(), nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
                                 nn.Conv2d(64, 32, 3, stride=1), nn.ReLU(), nn.Flatten(), nn.Linear(32 * 7 * 7, emb_dim))
        self.dec = nn.Sequential(nn.Linear(emb_dim, 32 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (32, 7, 7)),
                                 nn.ConvTranspose2d(32, 64, 3, stride=1), nn.ReLU(),
                                 nn.ConvTranspose2d(64, 32, 4, stride=2), nn.ReLU(),
                                 nn.ConvTranspose2d(32, S, 8, stride=4))
        # Standardisation of the embedding (set after training, saved with the encoder).
        self.register_buffer("mean", torch.zeros(emb_dim))
        self.register_buffer("std", torch.ones(emb_dim))

    def encode(self, stacks: torch.Tensor) -> torch.Tensor:
        return self.enc(stacks.float() / 255.0)

    def embed(self, stacks: torch.Tensor) -> torch.Tensor:
        """Standardised embedding (what the transformer sees)."""
        return (self.encode(stacks) - self.mean) / self.std

    def forward(self, stacks: torch.Tensor) -> torch.Tensor:
        return self.dec(self.encode(stacks))


@dataclass
class FrozenEncoder:
    """A trained, frozen frame encoder and what it saw."""

    model: FrameAutoencoder
    config: dict[str, Any]
    games: list[str]
    sha256: str
    path: Path | None = None
    #: the last row (exclusive) of each training history (by frames key) whose frames it saw
    rows_seen: dict = field(default_factory=dict)

    @property
    def emb_dim(self) -> int:
        return int(self.config["emb_dim"])

    @property
    def frame_stack(self) -> int:
        return int(self.config["frame_stack"])

    @torch.no_grad()
    def embed(self, stacks: np.ndarray, chunk: int = 512) -> np.ndarray:
        """float32 ``[N, emb_dim]`` of uint8 stacks ``[N, S, 84, 84]``."""
        out = np.empty((len(stacks), self.emb_dim), np.float32)
        for i in range(0, len(stacks), chunk):
            out[i : i + chunk] = self.model.embed(torch.from_numpy(np.ascontiguousarray(stacks[i : i + chunk]))).numpy()
        return out


def train_frame_encoder(sample_stacks: Callable[[np.random.Generator, int], np.ndarray], cfg: EncoderConfig,
                        out: str | os.PathLike, *, games: Sequence[str], frame_stack: int = 4,
                        rows_seen: dict[str, int] | None = None, progress: bool = False) -> FrozenEncoder:
    """Train the autoencoder on stacks drawn by ``sample_stacks(rng, n)`` (the training histories'
    frames only) and write it to ``out`` atomically. Same config + seed + data -> same weights."""
    out = Path(out)
    part = out.with_name(out.name + ".partial")
    shutil.rmtree(part, ignore_errors=True)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0xAE]))
    model = FrameAutoencoder(frame_stack, cfg.emb_dim)
    probe = sample_stacks(rng, 1024)
    background = torch.from_numpy(np.median(probe[:, -1], axis=0).astype(np.float32) / 255.0)  # [84, 84]
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    it = range(cfg.steps)
    if progress:
        from tqdm import tqdm  # the bar only

        it = tqdm(it, desc="frame encoder", unit="upd", mininterval=1.0)
    for _ in it:
        x = torch.from_numpy(sample_stacks(rng, cfg.batch_size))
        target = x.float() / 255.0
        w = 1.0 + cfg.fg_weight * ((target - background).abs() > 0.02).float()
        loss = (w * (model(x) - target) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        z = model.encode(torch.from_numpy(probe))
        model.mean.copy_(z.mean(0))
        model.std.copy_(z.std(0).clamp_min(1e-6))
    part.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items() if not k.startswith("dec.")}, str(part / "encoder.safetensors"))
    sha = sha256_file(part / "encoder.safetensors")
    conf = {**dataclasses.asdict(cfg), "frame_stack": int(frame_stack)}
    write_json_atomic(part / "encoder.json", {"format": FORMAT, "config": conf, "games": sorted(set(games)),
                                              "rows_seen": dict(rows_seen or {}),
                                              "sha256": sha, "final_loss": float(loss.detach())})
    if out.exists():
        shutil.rmtree(out)
    os.rename(part, out)
    return load_frame_encoder(out)


def load_frame_encoder(directory: str | os.PathLike) -> FrozenEncoder:
    d = Path(directory)
    meta = read_json(d / "encoder.json", CheckpointError, missing=f"{d}: not a frame encoder (encoder.json missing)")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{d / 'encoder.json'}: not a {FORMAT} file")
    w = d / "encoder.safetensors"
    if not w.exists() or sha256_file(w) != meta.get("sha256"):
        raise CheckpointError(f"{w}: missing or its sha256 does not match encoder.json")
    c = meta["config"]
    model = FrameAutoencoder(int(c["frame_stack"]), int(c["emb_dim"]))
    missing, _ = model.load_state_dict(load_file(str(w)), strict=False)
    if any(not k.startswith("dec.") for k in missing):
        raise CheckpointError(f"{w}: missing tensors {[k for k in missing if not k.startswith('dec.')]}")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return FrozenEncoder(model, c, list(meta.get("games", [])), meta["sha256"], d, dict(meta.get("rows_seen") or {}))


def cached_embeddings(encoder: FrozenEncoder, key: str, n: int, stacks_of: Callable[[np.ndarray], np.ndarray],
                      cache_dir: str | os.PathLike, *, chunk: int = 2048, progress: bool = False) -> np.ndarray:
    """``[n, emb_dim]`` float16 embeddings of rows ``0..n-1`` (``stacks_of(rows)`` gives their
    stacks), computed in chunks (a 10^6-step history never sits in memory) and cached under
    ``cache_dir`` by encoder and ``key``; returned as a read-only memory map."""
    d = Path(cache_dir) / "atari-embeddings" / encoder.sha256[:16]
    f = d / f"{key}.npy"
    if f.exists():
        arr = np.load(f, mmap_mode="r")
        if arr.shape == (n, encoder.emb_dim):
            return arr
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".{key}.{os.getpid()}.partial.npy"
    mm = np.lib.format.open_memmap(tmp, "w+", np.float16, (n, encoder.emb_dim))
    it = range(0, n, chunk)
    if progress:
        from tqdm import tqdm  # the bar only

        it = tqdm(it, desc="embed frames", unit="chunk", mininterval=1.0)
    for i in it:
        rows = np.arange(i, min(n, i + chunk))
        mm[rows[0] : rows[-1] + 1] = encoder.embed(stacks_of(rows)).astype(np.float16)
    mm.flush()
    del mm
    os.replace(tmp, f)
    return np.load(f, mmap_mode="r")


__all__ = ["EncoderConfig", "FrameAutoencoder", "FrozenEncoder", "train_frame_encoder", "load_frame_encoder",
           "cached_embeddings", "FORMAT"]
