"""The one dtype module and the one argument-check module, with the public names that lead to them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import torchfluid as fluid
from torchfluid import _checks as C
from torchfluid import dtypes, ops

SPELLINGS = [
    ("float32", "float32", torch.float32),
    ("FLOAT32", "float32", torch.float32),
    ("float", "float32", torch.float32),
    ("double", "float64", torch.float64),
    ("half", "float16", torch.float16),
    ("long", "int64", torch.int64),
    ("int", "int32", torch.int32),
    ("bfloat16", "bfloat16", torch.bfloat16),
    ("complex64", "complex64", torch.complex64),
    (np.float64, "float64", torch.float64),
    (np.dtype("int8"), "int8", torch.int8),
    (np.dtype("f4"), "float32", torch.float32),
    (np.bool_, "bool", torch.bool),
    (torch.uint8, "uint8", torch.uint8),
    (torch.complex128, "complex128", torch.complex128),
]


@pytest.mark.parametrize("spelling, name, torch_dtype", SPELLINGS)
def test_every_spelling_maps_to_one_name_and_one_torch_dtype(spelling, name, torch_dtype):
    assert dtypes.dtype_name(spelling) == name
    assert dtypes.torch_dtype(spelling) is torch_dtype
    # the public names lead to the same functions
    assert ops.convert_dtype(spelling) == name
    assert ops.to_torch_dtype(spelling) is torch_dtype
    assert fluid.framework.convert_dtype(spelling) is torch_dtype
    assert fluid.framework.dtype_name(torch_dtype) == name
    if name != "bfloat16":
        assert dtypes.numpy_dtype(spelling) == np.dtype(name)
        assert torch.empty(0, dtype=torch_dtype).numpy().dtype == np.dtype(name)


@pytest.mark.parametrize(
    "name, is_float",
    [
        ("float16", True),
        ("bfloat16", True),
        ("float32", True),
        ("float64", True),
        ("int64", False),
        ("bool", False),
        ("complex64", False),
        ("uint8", False),
    ],
)
def test_is_float_dtype(name, is_float):
    assert dtypes.is_float_dtype(name) is is_float
    assert dtypes.is_float_dtype(dtypes.torch_dtype(name)) is is_float


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: dtypes.dtype_name("float128"), "dtype must be one of .*, got 'float128'"),
        (lambda: dtypes.dtype_name(torch.float8_e4m3fn), "dtype must be one of .*, got torch.float8_e4m3fn"),
        (lambda: dtypes.dtype_name(np.dtype("U3")), "dtype must be one of .*, got dtype"),
        (lambda: dtypes.torch_dtype(3.5, "out_dtype"), "out_dtype must be a dtype name, numpy dtype or torch dtype"),
        (lambda: dtypes.torch_dtype(object(), "x"), "x must be a dtype name, numpy dtype or torch dtype, got object"),
        (lambda: dtypes.numpy_dtype("bfloat16"), "dtype: bfloat16 has no numpy dtype"),
    ],
)
def test_bad_dtypes_raise_type_error_naming_the_argument(call, message):
    with pytest.raises(TypeError, match=message):
        call()


@pytest.mark.parametrize(
    "kwargs, value, expected",
    [
        ({}, 3, 3.0),
        ({}, -math.pi, -math.pi),
        ({"lo": 0.0}, 0, 0.0),
        ({"lo": 0.0, "hi": 1.0, "hi_open": True}, 0.999, 0.999),
        ({"lo": 0.0, "lo_open": True}, 1e-300, 1e-300),
        ({"hi": 2.0}, np.float32(2.0), 2.0),
    ],
)
def test_check_number_accepts(kwargs, value, expected):
    out = C.check_number("x", value, **kwargs)
    assert out == expected and type(out) is float


@pytest.mark.parametrize(
    "kwargs, value, error, message",
    [
        ({"lo": 0.0, "hi": 1.0, "hi_open": True}, 1.5, ValueError, "rho must be in [0, 1), got 1.5"),
        ({"lo": 0.0, "hi": 1.0, "hi_open": True}, 1.0, ValueError, "rho must be in [0, 1), got 1.0"),
        ({"lo": 0.0, "lo_open": True}, 0, ValueError, "rho must be > 0, got 0"),
        ({"lo": 0.0}, -0.1, ValueError, "rho must be >= 0, got -0.1"),
        ({"hi": 1.0, "hi_open": True}, 1, ValueError, "rho must be < 1, got 1"),
        ({}, math.nan, ValueError, "rho must be a finite number, got nan"),
        ({"lo": 0.0}, math.inf, ValueError, "rho must be >= 0, got inf"),
        ({}, "0.1", TypeError, "rho must be a real number, got '0.1' of type str"),
        ({"lo": 0.0}, True, TypeError, "rho must be a real number >= 0, got True of type bool"),
        ({"lo": 0.0}, None, TypeError, "rho must be >= 0, got None"),
        ({}, None, TypeError, "rho must be a real number, got None"),
    ],
)
def test_check_number_rejects(kwargs, value, error, message):
    with pytest.raises(error) as info:
        C.check_number("rho", value, **kwargs)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)  # a wrong type is also a ValueError


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: C.check_int("n", 0, lo=0, lo_open=True), ValueError, "n must be an int > 0, got 0"),
        (lambda: C.check_int("n", -1, lo=0), ValueError, "n must be an int >= 0, got -1"),
        (lambda: C.check_int("n", 2.0, lo=0), C.ArgumentTypeError, "n must be an int >= 0, got 2.0"),
        (lambda: C.check_int("n", True), C.ArgumentTypeError, "n must be an int, got True"),
        (lambda: C.check_bool("flag", 1), C.ArgumentTypeError, "flag must be True or False, got 1"),
        (lambda: C.check_increasing("b", [1, 1]), ValueError, r"b must be strictly increasing, got \[1, 1\]"),
        (lambda: C.check_increasing("b", [1, "2"]), C.ArgumentTypeError, "b\\[1\\] must be a real number"),
        (lambda: C.check_increasing("b", {1, 2}), C.ArgumentTypeError, "b must be a list or tuple, got set"),
        (lambda: C.check_callable("fn", 3, "Owner"), C.ArgumentTypeError, "fn in Owner must be callable, got 3"),
    ],
)
def test_other_checks_reject(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize(
    "call, expected",
    [
        (lambda: C.check_int("n", np.int64(3), lo=0), 3),
        (lambda: C.check_bool("flag", False), False),
        (lambda: C.check_increasing("b", (1, 2.5)), [1, 2.5]),
    ],
)
def test_other_checks_accept(call, expected):
    assert call() == expected
