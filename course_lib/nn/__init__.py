"""A small, vectorized neural-network library: rows are examples, Z = X @ W + b.

Images are channels-last, (m, height, width, channels), as in Keras (see conv.py)."""

from .activations import (
    ACTIVATIONS,
    get_activation,
    identity,
    relu,
    sigmoid,
    softmax,
    softplus,
    tanh,
)
from .callbacks import Callback, EarlyStopping, History
from .conv import Conv2D, Flatten, MaxPooling2D, conv_backward, conv_forward, maxpool_backward, maxpool_forward
from .initializers import (
    INITIALIZERS,
    get_initializer,
    glorot_normal,
    glorot_uniform,
    he_normal,
    he_uniform,
    random_normal,
    zeros,
)
from .layers import Dense, Dropout, Layer, dense_backward, dense_forward
from .losses import (
    LOSSES,
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    categorical_cross_entropy,
    get_loss,
    mse_loss,
    softmax_cross_entropy_with_logits,
)
from .model import Sequential
from .optimizers import SGD, Adam, get_optimizer

__all__ = [
    "ACTIVATIONS",
    "INITIALIZERS",
    "LOSSES",
    "Adam",
    "Callback",
    "Conv2D",
    "Dense",
    "Dropout",
    "EarlyStopping",
    "Flatten",
    "History",
    "Layer",
    "MaxPooling2D",
    "SGD",
    "Sequential",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "categorical_cross_entropy",
    "conv_backward",
    "conv_forward",
    "dense_backward",
    "dense_forward",
    "get_activation",
    "get_initializer",
    "get_loss",
    "get_optimizer",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "identity",
    "maxpool_backward",
    "maxpool_forward",
    "mse_loss",
    "random_normal",
    "relu",
    "sigmoid",
    "softmax",
    "softmax_cross_entropy_with_logits",
    "softplus",
    "tanh",
    "zeros",
]
