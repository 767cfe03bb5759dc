"""The Algorithm-Distillation transformer: a causal GPT over learning-history tokens (model only).

In the spirit of nanoGPT's ``model.py``: one file, no training code. One token per step::

    token[t] = encode(obs[t]) + embed(action[t-1]) + w * reward[t-1] + b * first[t] (+ position)

``first[t]`` marks the first step of an episode (the step after a reset); ``action[t-1]`` is
the special "none" index ``n_actions`` for the first token of a context. The output at token
``t`` is the logits of ``action[t]`` (the action the teacher took after seeing everything up to
and including ``obs[t]``), so every position is a prediction.

Observation encoders, one per env family (``ModelConfig.obs_encoder``):

* ``table``  — a learned embedding per discrete observation (toy envs; the bandit's single obs);
* ``grid``   — a discrete cell index ``row * cols + col`` embedded as ``row_emb + col_emb``:
  the same information as ``table`` but with the grid's coordinates factorised, so a cell never
  seen as a goal still shares its row and column with cells that were (Dark Room);
* ``vector`` — a linear map of a float vector;
* ``pixels`` — a small Nature-DQN CNN over a stack of ``frame_stack`` 84x84 uint8 frames
  (Atari; stacks are rebuilt from single stored frames by the data layer).

Blocks are pre-LayerNorm with a GELU MLP; positions are learned (nanoGPT) or rotary. The model
supports a key/value cache (``KVCache``) for acting one step at a time.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
from torch.nn import functional as F

OBS_ENCODERS = ("table", "grid", "vector", "pixels")
POSITIONS = ("learned", "rotary")


@dataclass
class ModelConfig:
    """Shape of the model (saved in every checkpoint; a checkpoint only loads into the same)."""

    n_actions: int = field(default=5, metadata={"help": "actions the model predicts (from the env)"})
    obs_encoder: str = field(default="table", metadata={"help": "observation encoder: table | grid | vector | pixels", "choices": OBS_ENCODERS})
    obs_n: int = field(default=81, metadata={"help": "table/grid: number of discrete observations (from the env)"})
    grid_shape: tuple = field(default=(9, 9), metadata={"help": "grid: (rows, cols) of the cell index (from the env), JSON"})
    obs_dim: int = field(default=0, metadata={"help": "vector: length of the observation vector"})
    frame_stack: int = field(default=4, metadata={"help": "pixels: frames per stack (rebuilt from single stored frames)"})
    frame_size: int = field(default=84, metadata={"help": "pixels: frames are frame_size x frame_size"})
    context: int = field(default=256, metadata={"help": "tokens (steps) the model attends over: its window"})
    n_layer: int = field(default=4, metadata={"help": "transformer blocks"})
    n_head: int = field(default=4, metadata={"help": "attention heads"})
    d_model: int = field(default=64, metadata={"help": "width of the residual stream"})
    dropout: float = field(default=0.1, metadata={"help": "residual and MLP dropout"})
    attn_dropout: float = field(default=0.1, metadata={"help": "dropout on attention weights"})
    embd_dropout: float = field(default=0.1, metadata={"help": "dropout on the summed token embedding"})
    positions: str = field(default="learned", metadata={"help": "learned (nanoGPT) or rotary", "choices": POSITIONS})
    bias: bool = field(default=True, metadata={"help": "biases in linear layers and LayerNorms"})

    def __post_init__(self) -> None:
        self.grid_shape = tuple(int(s) for s in self.grid_shape)  # JSON gives lists
        if self.obs_encoder not in OBS_ENCODERS:
            raise ValueError(f"obs_encoder {self.obs_encoder!r} is not one of {OBS_ENCODERS}")
        if self.positions not in POSITIONS:
            raise ValueError(f"positions {self.positions!r} is not one of {POSITIONS}")
        if self.d_model % self.n_head:
            raise ValueError(f"d_model {self.d_model} is not a multiple of n_head {self.n_head}")
        if self.positions == "rotary" and (self.d_model // self.n_head) % 2:
            raise ValueError("rotary positions need an even head size")
        if self.n_actions < 1 or self.context < 1:
            raise ValueError("n_actions and context must be positive")
        if self.obs_encoder == "grid" and self.grid_shape[0] * self.grid_shape[1] != self.obs_n:
            raise ValueError(f"grid_shape {self.grid_shape} does not have obs_n={self.obs_n} cells")
        if self.obs_encoder == "vector" and self.obs_dim < 1:
            raise ValueError("the vector encoder needs obs_dim >= 1")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["grid_shape"] = list(self.grid_shape)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config field(s) {sorted(unknown)}")
        return cls(**d)


# ---------------------------------------------------------------------------------------------
# Observation encoders
# ---------------------------------------------------------------------------------------------
class TableEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n = cfg.obs_n
        self.emb = nn.Embedding(cfg.obs_n, cfg.d_model)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.emb(obs.long())


class GridEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.rows, self.cols = cfg.grid_shape
        self.row = nn.Embedding(self.rows, cfg.d_model)
        self.col = nn.Embedding(self.cols, cfg.d_model)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        obs = obs.long()
        return self.row(obs // self.cols) + self.col(obs % self.cols)


class VectorEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.lin = nn.Linear(cfg.obs_dim, cfg.d_model)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.lin(obs.float())


class PixelEncoder(nn.Module):
    """Nature-DQN convolutions over [.., frame_stack, 84, 84] uint8 frames."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        s = cfg.frame_size
        self.shape = (cfg.frame_stack, s, s)
        self.conv = nn.Sequential(
            nn.Conv2d(cfg.frame_stack, 32, 8, stride=4), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            n = self.conv(torch.zeros(1, *self.shape)).shape[1]
        self.out = nn.Linear(n, cfg.d_model)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        lead = obs.shape[: -3]
        x = obs.reshape(-1, *self.shape).float() / 255.0
        return self.out(self.conv(x)).reshape(*lead, -1)


_ENCODERS = {"table": TableEncoder, "grid": GridEncoder, "vector": VectorEncoder, "pixels": PixelEncoder}


# ---------------------------------------------------------------------------------------------
# Key/value cache for one-token-at-a-time acting
# ---------------------------------------------------------------------------------------------
@dataclass
class KVCache:
    """Per-layer keys and values of the tokens seen so far (``[B, H, L, head]``, preallocated
    to the model's context). ``length`` tokens are filled; new ones are written after them."""

    k: list[torch.Tensor]
    v: list[torch.Tensor]
    length: int = 0

    @classmethod
    def empty(cls, cfg: ModelConfig, batch: int = 1, device: Any = None, dtype: Any = None) -> "KVCache":
        hs = cfg.d_model // cfg.n_head
        shape = (batch, cfg.n_head, cfg.context, hs)
        mk = lambda: torch.zeros(shape, device=device, dtype=dtype or torch.float32)  # noqa: E731
        return cls([mk() for _ in range(cfg.n_layer)], [mk() for _ in range(cfg.n_layer)], 0)

    @property
    def capacity(self) -> int:
        return self.k[0].shape[2]


# ---------------------------------------------------------------------------------------------
# Transformer blocks
# ---------------------------------------------------------------------------------------------
def _rotary(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Rotate pairs of channels of ``x`` [B, H, T, hs] by angles pos * 10000^(-2i/hs)."""
    hs = x.shape[-1]
    inv = 1.0 / (10000 ** (torch.arange(0, hs, 2, device=x.device, dtype=torch.float32) / hs))
    ang = pos.to(torch.float32)[:, None] * inv[None, :]  # [T, hs/2]
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.d = cfg.d_model
        self.rotary = cfg.positions == "rotary"
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=cfg.bias)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.attn_dropout = cfg.attn_dropout
        self.resid_drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, pos: torch.Tensor, cache: KVCache | None, layer: int) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(self.d, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        if self.rotary:
            q, k = _rotary(q, pos), _rotary(k, pos)
        p = self.attn_dropout if self.training else 0.0
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        else:
            L = cache.length
            cache.k[layer][:, :, L : L + T] = k
            cache.v[layer][:, :, L : L + T] = v
            K, V = cache.k[layer][:, :, : L + T], cache.v[layer][:, :, : L + T]
            if T == 1:
                y = F.scaled_dot_product_attention(q, K, V, dropout_p=p)
            else:
                # New token i may see the L cached tokens and new tokens 0..i.
                mask = torch.ones(T, L + T, dtype=torch.bool, device=x.device).tril(diagonal=L)
                y = F.scaled_dot_product_attention(q, K, V, attn_mask=mask, dropout_p=p)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_drop(self.proj(y))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, 4 * cfg.d_model, bias=cfg.bias)
        self.proj = nn.Linear(4 * cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, pos: torch.Tensor, cache: KVCache | None, layer: int) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), pos, cache, layer)
        return x + self.mlp(self.ln2(x))


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------
@dataclass
class Tokens:
    """A batch of token inputs, each ``[B, T, ...]``: what the model sees at each step."""

    obs: torch.Tensor          # [B, T, *obs_shape]
    prev_action: torch.Tensor  # [B, T] int64, n_actions = none (first token of a context)
    prev_reward: torch.Tensor  # [B, T] float32
    first: torch.Tensor        # [B, T] bool: first step of an episode

    def to(self, device: Any) -> "Tokens":
        return Tokens(*(getattr(self, f.name).to(device) for f in dataclasses.fields(self)))

    def __getitem__(self, sl: Any) -> "Tokens":
        """Slice along time: ``tokens[:, a:b]``-style selection applied to every field."""
        return Tokens(*(getattr(self, f.name)[sl] for f in dataclasses.fields(self)))


class ADTransformer(nn.Module):
    """Causal transformer predicting the teacher's next action at every token."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.obs_enc = _ENCODERS[cfg.obs_encoder](cfg)
        self.act_emb = nn.Embedding(cfg.n_actions + 1, d)  # + "none"
        self.rew = nn.Linear(1, d)
        self.first_emb = nn.Parameter(torch.zeros(d))
        self.pos_emb = nn.Embedding(cfg.context, d) if cfg.positions == "learned" else None
        self.drop = nn.Dropout(cfg.embd_dropout)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(d, bias=cfg.bias)
        self.head = nn.Linear(d, cfg.n_actions, bias=False)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):  # GPT-2: scale residual projections by depth
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def n_params(self, non_embedding: bool = True) -> int:
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= sum(p.numel() for m in self.modules() if isinstance(m, nn.Embedding) for p in m.parameters())
        return n

    def flops_per_token(self, context: int | None = None) -> float:
        """Training FLOPs per token (forward + backward, the PaLM/nanoGPT estimate):
        6 * non-embedding parameters + 12 * layers * d_model * mean attended length.
        A causal context of T attends on average over ~T/2 tokens, counted here as T/2."""
        T = self.cfg.context if context is None else context
        return 6.0 * self.n_params() + 12.0 * self.cfg.n_layer * self.cfg.d_model * (T / 2.0)

    def embed(self, tok: Tokens, start: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        B, T = tok.prev_action.shape
        x = self.obs_enc(tok.obs) + self.act_emb(tok.prev_action.long())
        x = x + self.rew(tok.prev_reward.to(x.dtype).unsqueeze(-1))
        x = x + tok.first.to(x.dtype).unsqueeze(-1) * self.first_emb
        pos = torch.arange(start, start + T, device=x.device)
        if self.pos_emb is not None:
            if start + T > self.cfg.context:
                raise ValueError(f"{start + T} tokens exceed the model's context of {self.cfg.context}")
            x = x + self.pos_emb(pos)
        return self.drop(x), pos

    def forward(self, tok: Tokens, cache: KVCache | None = None) -> torch.Tensor:
        """Logits ``[B, T, n_actions]`` of the action at every token. With ``cache`` the tokens
        continue the cached ones (positions ``cache.length ...``) and are appended to it."""
        start = 0 if cache is None else cache.length
        T = tok.prev_action.shape[1]
        if cache is not None and start + T > cache.capacity:
            raise ValueError(f"KV cache full: {start} + {T} tokens > capacity {cache.capacity}")
        x, pos = self.embed(tok, start)
        for i, blk in enumerate(self.blocks):
            x = blk(x, pos, cache, i)
        if cache is not None:
            cache.length = start + T
        return self.head(self.ln_f(x))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """nanoGPT's AdamW grouping: decay matrices and embeddings, not biases and norms."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


__all__ = ["ModelConfig", "ADTransformer", "KVCache", "Tokens", "param_groups", "OBS_ENCODERS", "POSITIONS"]
