"""``fluid.layers``: network building functions for both modes.

Each function appends an op (static Variables) or runs it eagerly (torch tensors) -- the
same op definitions (:mod:`torchfluid.ops`) in both modes."""

from .helper import LayerHelper
from .learning_rate_scheduler import (
    autoincreased_step_counter,
    cosine_decay,
    exponential_decay,
    inverse_time_decay,
    linear_lr_warmup,
    natural_exp_decay,
    noam_decay,
    piecewise_decay,
    polynomial_decay,
)
from .math import (
    abs,
    cast,
    concat,
    elementwise_add,
    elementwise_div,
    elementwise_max,
    elementwise_min,
    elementwise_mul,
    elementwise_pow,
    elementwise_sub,
    exp,
    log,
    matmul,
    mean,
    reduce_mean,
    reduce_sum,
    relu,
    reshape,
    scale,
    sigmoid,
    sqrt,
    square,
    sums,
    tanh,
)
from .nn import (
    accuracy,
    cross_entropy,
    data,
    embedding,
    fc,
    softmax,
    softmax_with_cross_entropy,
    square_error_cost,
)
from .tensor import assign, create_global_var, create_parameter, fill_constant, uniform_random
from .vision import batch_norm, conv2d, dropout, pool2d

__all__ = [
    "LayerHelper",
    "data",
    "fc",
    "embedding",
    "square_error_cost",
    "cross_entropy",
    "softmax_with_cross_entropy",
    "softmax",
    "accuracy",
    "mean",
    "reduce_mean",
    "reduce_sum",
    "sums",
    "elementwise_add",
    "elementwise_sub",
    "elementwise_mul",
    "elementwise_div",
    "elementwise_max",
    "elementwise_min",
    "elementwise_pow",
    "relu",
    "sigmoid",
    "tanh",
    "square",
    "sqrt",
    "exp",
    "log",
    "abs",
    "scale",
    "matmul",
    "reshape",
    "concat",
    "cast",
    "fill_constant",
    "create_global_var",
    "create_parameter",
    "assign",
    "piecewise_decay",
    "exponential_decay",
    "natural_exp_decay",
    "inverse_time_decay",
    "polynomial_decay",
    "cosine_decay",
    "noam_decay",
    "linear_lr_warmup",
    "autoincreased_step_counter",
    "uniform_random",
    "conv2d",
    "pool2d",
    "batch_norm",
    "dropout",
]


def __getattr__(name):  # a fluid.layers name torchfluid does not implement: say so, and what to use instead
    from .._unsupported import missing

    raise missing("fluid.layers", name)
