"""The practical imitator: an Algorithm-Distillation transformer trained on learning histories.

* ``model``    — the causal transformer (model only, nanoGPT style) and its KV cache;
* ``data``     — tokenization, packed memory-mapped stores, episode windows (AD subsampling);
* ``corpus``   — which histories to record (``DataSpec``), recorded and cached on disk;
* ``train``    — the training loop, checkpoints, data parallelism;
* ``agent``    — ``TransformerImitator``: the Imitator protocol, acting in context with a KV cache;
* ``incontext``— batched in-context rollouts on many tasks (evaluation);
* ``presets``  — smoke / default / paper settings per env family.
"""
from learners.transformer.agent import HistoryFitError, TransformerImitator
from learners.transformer.model import ADTransformer, ModelConfig

__all__ = ["ADTransformer", "ModelConfig", "TransformerImitator", "HistoryFitError"]
