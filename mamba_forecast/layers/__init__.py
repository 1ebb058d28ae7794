"""Blocks shared by several forecasters (torch only)."""

from .embedding import InvertedEmbedding, patch_count, patchify, sinusoidal_positions
from .encoder import EncoderLayer, FeedForward
from .fast_attention import KERNELS, FastAttention, orthogonal_gaussian_features
from .normalization import instance_denormalize, instance_normalize
from .pooled_attention import AdaptivePoolAttention, adaptive_pool
from .weighted_average import WeightedAverage

__all__ = [
    "KERNELS",
    "AdaptivePoolAttention",
    "EncoderLayer",
    "FastAttention",
    "FeedForward",
    "InvertedEmbedding",
    "WeightedAverage",
    "adaptive_pool",
    "instance_denormalize",
    "instance_normalize",
    "orthogonal_gaussian_features",
    "patch_count",
    "patchify",
    "sinusoidal_positions",
]
