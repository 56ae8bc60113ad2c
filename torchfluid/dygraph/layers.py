"""``Layer``: Paddle's dygraph ``Layer`` as a ``torch.nn.Module``.

It is a real ``nn.Module`` (``.to()``, hooks, ``load_state_dict``, ``torch.compile`` and
torch optimizers all work) with Paddle's API on top:

* ``parameters()`` / ``sublayers()`` / ``buffers()`` return lists (torch: iterators);
  ``named_parameters(prefix='', include_sublayers=True)`` and ``named_sublayers`` yield
  pairs in the same order as torch (own members first, then sublayers depth first).
* ``state_dict()`` holds the parameters and persistable buffers themselves (Paddle's
  ``keep_vars``) under structured keys (``weight``, ``fc1.bias``); each parameter also
  has its unique ``name`` (``linear_0.w_0``). Pass ``keep_vars=False`` for torch's
  detached plain tensors (what ``torch.save``/``torch.load(weights_only=True)`` expect).
  ``set_state_dict`` (aliases ``set_dict``, ``load_dict``) takes numpy
  arrays or tensors, matches by structured key (or by parameter name with
  ``use_structured_name=False``), warns and skips keys that are missing or of another
  shape (as Paddle), and raises on a dtype mismatch before changing anything.
* ``create_parameter(shape, attr, dtype, is_bias, default_initializer)`` names
  parameters ``<full_name>.w_<k>`` / ``.b_<k>`` and initialises them (default Xavier
  uniform for weights, zeros for biases); ``full_name()`` is ``<snake_class_name>_<k>``.
"""

from __future__ import annotations

import collections
import copy
import re
import warnings

import numpy as np
import torch

from .. import framework, unique_name
from ..dtypes import dtype_name, torch_dtype
from ..initializer import ConstantInitializer, XavierInitializer, seeded_generator
from ..param_attr import ParamAttr
from .varbase import ParamBase, VarBase, new_parameter, plain_dispatch

__all__ = ["Layer"]

_first_cap_re = re.compile("(.)([A-Z][a-z]+)")
_all_cap_re = re.compile("([a-z])([A-Z])")


def _recurse(include_sublayers: bool, recurse) -> bool:
    return bool(include_sublayers if recurse is None else recurse)


class Layer(torch.nn.Module):
    """Base class of dygraph layers (``fluid.dygraph.Layer``, 2.x ``paddle.nn.Layer``)."""

    def __init__(self, name_scope=None, dtype="float32"):
        super().__init__()
        if name_scope is None:
            name_scope = _all_cap_re.sub(r"\1_\2", _first_cap_re.sub(r"\1_\2", type(self).__name__)).lower()
        if not isinstance(name_scope, str) or not name_scope:
            raise TypeError(f"name_scope must be a non-empty str or None, got {name_scope!r}")
        torch_dtype(dtype)
        self._full_name = unique_name.generate(name_scope)
        self._dtype = dtype

    def full_name(self) -> str:
        """This layer's unique name, e.g. ``linear_0``; its parameters are ``linear_0.w_0``..."""
        return self._full_name

    # ------------------------------------------------------------ parameters
    def create_parameter(self, shape, attr=None, dtype=None, is_bias=False, default_initializer=None):
        """A new initialised parameter (not yet registered: assign it or ``add_parameter``).

        Returns None when ``attr`` is False (e.g. ``bias_attr=False``).
        """
        attr = ParamAttr._to_attr(copy.deepcopy(None if isinstance(attr, str) and attr == "" else attr))
        if attr is False:
            return None
        if isinstance(attr, list):
            raise TypeError("create_parameter: attr must describe one parameter, got a list")
        if not isinstance(shape, (list, tuple)) or not all(
            isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise ValueError(f"create_parameter: shape must be a list of ints >= 0, got {shape!r}")
        dtype = torch_dtype(self._dtype if dtype is None else dtype)
        if attr.name is None:
            attr.name = unique_name.generate(f"{self._full_name}.{'b' if is_bias else 'w'}")
        if attr.initializer is None:
            if default_initializer is None and not dtype.is_floating_point:
                raise TypeError(
                    f"create_parameter: no default initializer for dtype {dtype_name(dtype)}; "
                    "pass default_initializer or ParamAttr(initializer=...)"
                )
            attr.initializer = default_initializer or (ConstantInitializer(0.0) if is_bias else XavierInitializer())
        if unique_name.dygraph_parameter_name_checker(attr.name):
            raise ValueError(
                f"parameter name [{attr.name}] is already used in this dygraph scope; parameter "
                "names must be unique (check the ParamAttr names passed to the layers)"
            )
        device = framework._current_expected_place().device
        data = torch.empty([int(d) for d in shape], dtype=dtype, device=device)
        attr.initializer(data, generator=seeded_generator(framework.default_main_program().random_seed))
        return new_parameter(data, **attr._to_kwargs())

    def add_parameter(self, name, parameter):
        """Register ``parameter`` (a parameter or None) as ``self.<name>``; returns it."""
        if not isinstance(name, str):
            raise TypeError(f"The name of parameter should be a string, but received {type(name).__name__}.")
        if "." in name:
            raise KeyError(f"The name of parameter can not contain '.', got {name!r}")
        if name == "":
            raise KeyError("The name of parameter can not be empty.")
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"The parameter '{name}' already exists.")
        if parameter is not None and not isinstance(parameter, torch.nn.Parameter):
            raise TypeError(
                f"The parameter to be added should be a Parameter, but received {type(parameter).__name__}."
            )
        self.register_parameter(name, parameter)
        return parameter

    def add_sublayer(self, name, sublayer):
        """Register ``sublayer`` (any ``nn.Module``) as ``self.<name>``; returns it."""
        if not isinstance(sublayer, torch.nn.Module):
            raise TypeError(f"add_sublayer: sublayer must be a Layer, got {type(sublayer).__name__}")
        self.add_module(name, sublayer)
        return sublayer

    def parameters(self, include_sublayers=True, *, recurse=None):
        """All parameters (of sublayers too unless ``include_sublayers=False``), as a list."""
        return list(super().parameters(recurse=_recurse(include_sublayers, recurse)))

    def named_parameters(self, prefix="", include_sublayers=True, *, recurse=None, remove_duplicate=True):
        return super().named_parameters(
            prefix=prefix, recurse=_recurse(include_sublayers, recurse), remove_duplicate=remove_duplicate
        )

    def buffers(self, include_sublayers=True, *, recurse=None):
        return list(super().buffers(recurse=_recurse(include_sublayers, recurse)))

    def named_buffers(self, prefix="", include_sublayers=True, *, recurse=None, remove_duplicate=True):
        return super().named_buffers(
            prefix=prefix, recurse=_recurse(include_sublayers, recurse), remove_duplicate=remove_duplicate
        )

    def register_buffer(self, name, tensor, persistable=True, *, persistent=None):
        """Paddle's ``persistable`` (torch's ``persistent``): persistable buffers go in state_dict."""
        return super().register_buffer(name, tensor, persistent=persistable if persistent is None else persistent)

    def sublayers(self, include_sublayers=True):
        """Sublayers (depth first, without self), as a list; only children if not include_sublayers."""
        return [layer for _, layer in self.named_sublayers(include_sublayers=include_sublayers)]

    def named_sublayers(self, prefix="", include_sublayers=True, include_self=False, layers_set=None):
        if not include_sublayers:
            if include_self:
                yield prefix, self
            for name, layer in self.named_children():
                yield (f"{prefix}.{name}" if prefix else name), layer
            return
        memo = set() if layers_set is None else layers_set
        for name, layer in self.named_modules(memo=memo, prefix=prefix):
            if layer is self and not include_self:
                continue
            yield name, layer

    def clear_gradients(self):
        """Zero the gradient of every trainable parameter (Paddle keeps the zero tensor)."""
        with plain_dispatch():  # attribute reads on parameters without VarBase's per-op hop
            for p in self.parameters():
                if p.requires_grad:
                    if isinstance(p, ParamBase):
                        p.clear_gradient()
                    elif p.grad is not None:
                        p.grad.detach_().zero_()

    def register_forward_post_hook(self, hook):
        """``hook(layer, inputs, output)`` after forward; a non-None result replaces the output."""
        return self.register_forward_hook(hook)

    # ------------------------------------------------------------ state
    def state_dict(
        self, destination=None, include_sublayers=True, structured_name_prefix="", *, prefix=None, keep_vars=True
    ):
        """Parameters and persistable buffers under structured keys (the objects themselves)."""
        if prefix is not None:
            structured_name_prefix = prefix
        if include_sublayers:
            destination = super().state_dict(
                destination=destination, prefix=structured_name_prefix, keep_vars=keep_vars
            )
        else:
            if destination is None:
                destination = collections.OrderedDict()
            self._save_to_state_dict(destination, structured_name_prefix, keep_vars)
        if not keep_vars:  # torch semantics: plain detached tensors (loadable with weights_only)
            for value in destination.values():
                if isinstance(value, VarBase):  # fresh detach() results: switch class in place
                    value.__class__ = torch.Tensor
        return destination

    def set_state_dict(self, state_dict, include_sublayers=True, use_structured_name=True):
        """Load values by structured key (or parameter name); see the module docstring."""
        if not isinstance(state_dict, collections.abc.Mapping):
            raise TypeError(f"set_state_dict: state_dict must be a dict, got {type(state_dict).__name__}")
        updates = []
        for key, target in self.state_dict(include_sublayers=include_sublayers).items():
            lookup = key if use_structured_name else getattr(target, "_fluid_name", key)
            value = state_dict.get(lookup)
            if value is None:
                warnings.warn(f"Skip loading for {key}. {lookup} is not found in the provided dict.", stacklevel=2)
                continue
            if isinstance(value, np.ndarray):
                value = torch.from_numpy(np.ascontiguousarray(value))
            elif not isinstance(value, torch.Tensor):
                raise TypeError(
                    f"set_state_dict: {lookup!r} must be a numpy array or Tensor, got {type(value).__name__}"
                )
            if list(value.shape) != list(target.shape):
                warnings.warn(
                    f"Skip loading for {key}. {lookup} receives a shape {list(value.shape)}, "
                    f"but the expected shape is {list(target.shape)}.",
                    stacklevel=2,
                )
                continue
            if value.dtype != target.dtype:
                raise ValueError(
                    f"set_state_dict: {lookup!r} has dtype {dtype_name(value.dtype)}, but "
                    f"{key} is {dtype_name(target.dtype)}; nothing was loaded"
                )
            updates.append((target, value))
        with torch.no_grad():
            for target, value in updates:
                target.copy_(value.detach().to(target.device))

    set_dict = set_state_dict
    load_dict = set_state_dict
