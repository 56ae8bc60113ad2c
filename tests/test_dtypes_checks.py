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


BIG = 2**63 - 1  # a seed's documented maximum, not a float64 number (float(BIG) == 2**63)


@pytest.mark.parametrize(
    "kwargs, value",
    [
        ({"lo": 0, "hi": BIG}, BIG),
        ({"lo": 0, "hi": BIG}, np.int64(BIG)),
        ({"hi": 2**64 - 1}, np.uint64(2**64 - 1)),
        ({"hi": 2**53}, 2**53),
        ({"lo": 2**53 + 1}, 2**53 + 1),
        ({"lo": BIG, "lo_open": True}, 2**63),
        ({"hi": 2**63, "hi_open": True}, BIG),
        ({"lo": 0.5}, 1),  # an int against a float bound
        ({"hi": 2**53}, float(2**53 + 1)),  # a float is compared as the float it is (2**53 + 1 rounds to 2**53)
        ({"lo": 0}, 10**308),
    ],
)
def test_check_number_compares_integers_exactly_inside(kwargs, value):
    out = C.check_number("x", value, **kwargs)
    assert type(out) is float and out == float(int(value))


@pytest.mark.parametrize(
    "kwargs, value, message",
    [
        ({"lo": 0, "hi": BIG}, 2**63, "x must be in [0, 9.22337e+18], got 9223372036854775808"),
        ({"lo": 0, "hi": BIG}, np.int64(-1), "x must be in [0, 9.22337e+18], got np.int64(-1)"),
        ({"hi": 2**53}, 2**53 + 1, "x must be <= 9.0072e+15, got 9007199254740993"),
        ({"hi": 2**53}, np.int64(2**53 + 1), "x must be <= 9.0072e+15, got np.int64(9007199254740993)"),
        ({"hi": 2**64 - 2}, np.uint64(2**64 - 1), "x must be <= 1.84467e+19, got np.uint64(18446744073709551615)"),
        ({"lo": 2**53 + 1}, 2**53, "x must be >= 9.0072e+15, got 9007199254740992"),
        ({"lo": BIG, "lo_open": True}, BIG, "x must be > 9.22337e+18, got 9223372036854775807"),
        ({"hi": BIG, "hi_open": True}, BIG, "x must be < 9.22337e+18, got 9223372036854775807"),
        ({"hi": BIG}, float(BIG), "x must be <= 9.22337e+18, got 9.223372036854776e+18"),  # a float: 2**63
        ({}, 10**400, "x must be a finite number, got an integer of 401 digits"),
        ({"lo": 1}, 10**400, "x must be >= 1, got an integer of 401 digits"),
        ({"lo": 0}, -(10**50), "x must be >= 0, got a negative integer of 51 digits"),
        ({"hi": 0}, 10**40 - 1, "x must be <= 0, got " + "9" * 40),  # 40 digits: shown
        ({"hi": 0}, 10**40, "x must be <= 0, got an integer of 41 digits"),
        pytest.param({"hi": 0}, 10**5000, "x must be <= 0, got an integer of more than 4300 digits", id="5001-digits"),
        ({}, torch.tensor(3), "x must be a real number, got tensor(3) of type Tensor"),  # tensors: refused by type
    ],
)
def test_check_number_compares_integers_exactly_at_the_bounds(kwargs, value, message):
    with pytest.raises(ValueError) as info:
        C.check_number("x", value, **kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "value, choices, expected",
    [
        ("skip", ("propagate", "skip", "raise"), "skip"),
        (np.str_("raise"), ("propagate", "skip", "raise"), "raise"),  # a str subclass gives the choice itself
        (None, (None, torch.float32, torch.bfloat16), None),
        (torch.bfloat16, (None, torch.float32, torch.bfloat16), torch.bfloat16),
    ],
)
def test_check_choice_returns_the_choice(value, choices, expected):
    out = C.check_choice("x", value, choices)
    assert out is expected or (out == expected and type(out) is type(expected))


@pytest.mark.parametrize(
    "value, choices, error, message",
    [
        (
            "ignore",
            ("propagate", "skip", "raise"),
            ValueError,
            "x must be one of 'propagate', 'skip', 'raise', got 'ignore'",
        ),
        (
            "Skip",
            ("propagate", "skip", "raise"),
            ValueError,
            "x must be one of 'propagate', 'skip', 'raise', got 'Skip'",
        ),
        (b"skip", ("skip",), C.ArgumentTypeError, "x must be one of 'skip', got b'skip'"),
        (1, ("skip", "raise"), C.ArgumentTypeError, "x must be one of 'skip', 'raise', got 1"),
        (None, ("skip",), C.ArgumentTypeError, "x must be one of 'skip', got None"),
        ([1], ("skip",), C.ArgumentTypeError, "x must be one of 'skip', got [1]"),
        (
            np.array(["skip"]),
            ("skip",),
            C.ArgumentTypeError,
            "x must be one of 'skip', got array(['skip'], dtype='<U4')",
        ),
        (
            torch.float16,
            (None, torch.float32, torch.bfloat16),
            ValueError,
            "x must be one of None, torch.float32, torch.bfloat16, got torch.float16",
        ),
        ("float32", (None, torch.float32), C.ArgumentTypeError, "x must be one of None, torch.float32, got 'float32'"),
        (10**50, (1, 2), ValueError, "x must be one of 1, 2, got an integer of 51 digits"),
    ],
)
def test_check_choice_rejects(value, choices, error, message):
    with pytest.raises(error) as info:
        C.check_choice("x", value, choices)
    assert str(info.value) == message and type(info.value) is error
