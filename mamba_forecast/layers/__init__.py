"""Blocks shared by several forecasters (torch only)."""

from .embedding import InvertedEmbedding, patch_count, patchify, sinusoidal_positions
from .encoder import EncoderLayer, FeedForward
from .normalization import instance_denormalize, instance_normalize

__all__ = [
    "EncoderLayer",
    "FeedForward",
    "InvertedEmbedding",
    "instance_denormalize",
    "instance_normalize",
    "patch_count",
    "patchify",
    "sinusoidal_positions",
]
