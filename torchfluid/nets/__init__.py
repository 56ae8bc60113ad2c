"""``fluid.nets``: small compositions of layers used by the book models."""

from ..layers.vision import conv2d, pool2d
from .._unsupported import fluid_module_getattr

__all__ = ["simple_img_conv_pool"]


def simple_img_conv_pool(
    input,
    num_filters,
    filter_size,
    pool_size,
    pool_stride,
    pool_padding=0,
    pool_type="max",
    global_pooling=False,
    conv_stride=1,
    conv_padding=0,
    conv_dilation=1,
    conv_groups=1,
    param_attr=None,
    bias_attr=None,
    act=None,
    use_cudnn=True,
):
    """``pool2d(act(conv2d(input)))``: a convolution (with bias and activation) followed by
    a pooling, as ``fluid.nets.simple_img_conv_pool``."""
    conv_out = conv2d(
        input=input,
        num_filters=num_filters,
        filter_size=filter_size,
        stride=conv_stride,
        padding=conv_padding,
        dilation=conv_dilation,
        groups=conv_groups,
        param_attr=param_attr,
        bias_attr=bias_attr,
        act=act,
        use_cudnn=use_cudnn,
    )
    return pool2d(
        input=conv_out,
        pool_size=pool_size,
        pool_type=pool_type,
        pool_stride=pool_stride,
        pool_padding=pool_padding,
        global_pooling=global_pooling,
        use_cudnn=use_cudnn,
    )


# a fluid.nets name torchfluid does not implement: say so, and what to use instead
__getattr__ = fluid_module_getattr("fluid.nets", __name__)
