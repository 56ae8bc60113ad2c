"""The dygraph Variable: a ``torch.Tensor`` subclass with Paddle's methods.

Design. ``VarBase`` subclasses ``torch.Tensor`` (the same object torch sees, no
wrapper), so every torch function, operator, ``nn.Module`` and optimizer accepts it and
autograd works unchanged. Its ``__torch_function__`` makes every fresh tensor result a
``VarBase`` (by switching the new object's class: no alias node, no copy), so
``out = linear(x); out.backward()`` keeps Paddle's methods down the graph. Parameters
are ``ParamBase(VarBase, torch.nn.Parameter)``: ``nn.Module``
registers them, and ``w * 2`` is a plain ``VarBase`` (never a parameter). Gradients
(``.grad``) and tensors made without a Variable stay plain torch tensors. Monkey-patching
``torch.Tensor`` (Paddle's own approach) was rejected: it would change torch for every
other library in the process. The cost is one Python hop per op on Variables.

Paddle methods and attributes: ``numpy()`` (a copy), ``backward(grad_tensor=None,
retain_graph=False)`` (any shape: the seed gradient is ones, as in Paddle),
``gradient()`` (numpy, ``(values, rows)`` for a row-sparse gradient, or None; None too for a
cleared row-sparse one, as in Paddle),
``clear_gradient(set_to_zero=True)`` / ``clear_grad``, ``stop_gradient`` (= not
``requires_grad``; True for data, False for parameters), ``name``, ``shape`` (a list),
``place``, ``persistable``, ``set_value``, ``astype``, ``detach()``.

Where torch and Paddle disagree torch wins, so torch code keeps working: ``dtype`` is a
``torch.dtype`` (``framework.dtype_name`` gives 'float32'); ``.grad`` is the gradient
tensor (Paddle 2.x returns numpy: use ``gradient()``); ``size()`` is torch's; non-leaf
Variables keep no gradient unless ``retain_grad()`` is called or
``fluid.set_flags({'FLAGS_retain_grad_for_all_tensor': True})`` was set when they were made
(Paddle's legacy dygraph kept them all).
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
import torch

from .. import framework
from ..dtypes import dtype_name, torch_dtype
from ..optimizer.state import STATE_VIEWS

__all__ = ["VarBase", "ParamBase", "Shape", "to_numpy", "call_plain", "plain_dispatch"]

_NOWRAP = torch.overrides.get_default_nowrap_functions()
# the engine call behind torch.autograd.backward (torch >= 2.3); None: use torch.autograd.backward
_run_backward = getattr(torch.autograd.graph, "_engine_run_backward", None)
_NO_SUBCLASS = torch._C.DisableTorchFunctionSubclass
_tmp_ids = itertools.count()


class Shape(list):
    """A list (Paddle's ``shape``) that also equals tuples and ``torch.Size`` and hashes."""

    def __eq__(self, other):
        if isinstance(other, (list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __hash__(self):
        return hash(tuple(self))


def _plain(t: torch.Tensor) -> torch.Tensor:
    """The same data as a plain, detached ``torch.Tensor`` (no subclass dispatch)."""
    with torch._C.DisableTorchFunctionSubclass():
        return torch.Tensor.detach(t)


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A numpy copy of ``t`` (dense; bfloat16 as Paddle's uint16 bit pattern)."""
    t = _plain(t)
    if t.is_sparse:
        t = t.to_dense()
    t = t.cpu()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(np.uint16).copy()
    return t.numpy().copy()


_SEQS = (list, tuple)


def _inputs(args, kwargs) -> set:
    """ids of the tensors passed to an op (top level and inside lists/tuples)."""
    found = set()
    for a in (*args, *kwargs.values()):
        if isinstance(a, torch.Tensor):
            found.add(id(a))
        elif isinstance(a, (list, tuple)):
            found.update(id(b) for b in a if isinstance(b, torch.Tensor))
    return found


def _convert(ret, inputs: set):
    """Make fresh plain-tensor results VarBase by switching their class (no alias, no copy).

    A result that is one of the inputs (an in-place op, ``.to()`` with nothing to do) keeps
    its type, so a plain tensor is never turned into a VarBase behind its owner's back.
    """
    if type(ret) is torch.Tensor:
        if id(ret) not in inputs:
            ret.__class__ = VarBase
            if framework.retain_grad_for_all_tensor:
                _keep_grad(ret)
        return ret
    if isinstance(ret, (tuple, list)) and any(type(r) is torch.Tensor for r in ret):
        for r in ret:
            _convert(r, inputs)
    return ret


def _keep_grad(t: torch.Tensor) -> None:
    """``FLAGS_retain_grad_for_all_tensor``: a fresh intermediate result keeps its gradient."""
    with _NO_SUBCLASS():
        if t.grad_fn is not None:
            torch.Tensor.retain_grad(t)


plain_dispatch = _NO_SUBCLASS  # ``with plain_dispatch():`` torch ops skip VarBase's Python hop


def call_plain(func, *args, **kwargs):
    """``func(*args, **kwargs)`` with VarBase's per-op hop switched off inside, then the
    fresh tensor results made VarBase once if any argument was a Variable: what calling
    it op by op would return, for one hop instead of one per op (layer forwards, ops)."""
    with _NO_SUBCLASS():
        ret = func(*args, **kwargs)
    if _any_variable(args) or (kwargs and _any_variable(kwargs.values())):
        if type(ret) is torch.Tensor and not kwargs:
            for a in args:
                if a is ret or isinstance(a, _SEQS):
                    return _convert(ret, _inputs(args, kwargs))
            ret.__class__ = VarBase  # the common case: a fresh tensor from positional, non-list arguments
            if framework.retain_grad_for_all_tensor:
                _keep_grad(ret)
            return ret
        return _convert(ret, _inputs(args, kwargs))
    return ret


def _any_variable(values) -> bool:
    """Whether a VarBase is among ``values`` (top level or inside lists/tuples)."""
    for a in values:
        if isinstance(a, VarBase):
            return True
        if isinstance(a, _SEQS) and any(isinstance(b, VarBase) for b in a):
            return True
    return False


class VarBase(torch.Tensor):
    """Paddle's dygraph Variable (``core.VarBase`` / 2.x ``Tensor``) as a torch tensor."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        with _NO_SUBCLASS():
            ret = func(*args, **kwargs) if kwargs else func(*args)
        # Most calls made per training step (attribute reads: .grad, .dtype, numel(),
        # data_ptr() ...) return no tensor: they leave at the first test.
        if type(ret) is torch.Tensor:
            if func in _NOWRAP or any(a is ret for a in args):
                return ret
            if kwargs or any(isinstance(a, (list, tuple)) for a in args):
                return _convert(ret, _inputs(args, kwargs or {}))
            ret.__class__ = VarBase
            if framework.retain_grad_for_all_tensor:
                _keep_grad(ret)
            return ret
        if isinstance(ret, (tuple, list)) and func not in _NOWRAP:
            return _convert(ret, _inputs(args, kwargs or {}))
        return ret

    # ------------------------------------------------------------ attributes
    @property
    def name(self) -> str:
        name = self.__dict__.get("_fluid_name")  # explicit names only (parameters, to_variable)
        if name is None:  # a generated name, made once, on first use
            name = self.__dict__.get("_tmp_name")
            if name is None:
                name = self.__dict__["_tmp_name"] = f"generated_tensor_{next(_tmp_ids)}"
        return name

    @name.setter
    def name(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise TypeError(f"name must be a non-empty str, got {value!r}")
        self.__dict__["_fluid_name"] = value

    @property
    def stop_gradient(self) -> bool:
        return not self.requires_grad

    @stop_gradient.setter
    def stop_gradient(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"stop_gradient must be a bool, got {value!r}")
        if self.is_leaf:
            self.requires_grad_(not value)
        elif value:
            self.detach_()  # an intermediate result: cut it from the graph, as Paddle does

    @property
    def shape(self) -> Shape:
        return Shape(self.size())

    @property
    def place(self) -> framework.Place:
        return framework.to_place(self.device)

    @property
    def persistable(self) -> bool:
        return self.__dict__.get("_persistable", False)

    @persistable.setter
    def persistable(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"persistable must be a bool, got {value!r}")
        self.__dict__["_persistable"] = value

    # ------------------------------------------------------------ Paddle methods
    def numpy(self) -> np.ndarray:  # noqa: D401 - Paddle's name
        """A numpy copy of the value (no gradient tracking, always on the host)."""
        return to_numpy(self)

    def backward(self, grad_tensor=None, retain_graph=False, **torch_kwargs):
        """Accumulate d(self)/d(leaf) into every leaf's gradient; the seed is ones by default.

        On a Variable with ``stop_gradient=True`` (nothing it depends on needs a gradient) it
        does nothing, as Paddle's dygraph engine skips such a loss; torch's ``backward`` raises
        there, and so does a torch-style call (``backward(gradient=...)``)."""
        if torch_kwargs:  # torch-style call: backward(gradient=..., create_graph=...)
            if grad_tensor is not None and "gradient" in torch_kwargs:
                raise TypeError("backward() got both grad_tensor and gradient; pass one")
            gradient = torch_kwargs.pop("gradient", grad_tensor)
            return torch.Tensor.backward(self, gradient, retain_graph or None, **torch_kwargs)
        with _NO_SUBCLASS():  # attribute reads and autograd's checks without the per-op hop
            self._backward(grad_tensor, retain_graph)

    def _backward(self, grad_tensor, retain_graph) -> None:
        if not self.requires_grad:
            return
        if grad_tensor is None:
            if self.numel() == 1:  # a loss: autograd seeds it with one (no seed to check against the shape)
                if _run_backward is not None and self.grad_fn is not None and self.is_floating_point():
                    # what torch.autograd.backward runs for a real one-element output, without its
                    # per-call argument handling (a third of a small model's backward time)
                    seed = torch.ones_like(self, memory_format=torch.preserve_format)
                    _run_backward(
                        (self,), (seed,), bool(retain_graph), False, (), allow_unreachable=True, accumulate_grad=True
                    )
                    return
                torch.autograd.backward([self], retain_graph=bool(retain_graph))
                return
            grad_tensor = torch.ones_like(_plain(self))
        else:
            if not isinstance(grad_tensor, torch.Tensor):
                raise TypeError(f"grad_tensor must be a Tensor or None, got {type(grad_tensor).__name__}")
            if list(grad_tensor.shape) != list(self.shape):
                raise ValueError(
                    f"grad_tensor has shape {list(grad_tensor.shape)}, but Variable {self.name!r} "
                    f"has shape {list(self.shape)}"
                )
        torch.autograd.backward([self], [_plain(grad_tensor)], retain_graph=bool(retain_graph))

    def _grad_tensor(self):
        if not self.is_leaf and not self.retains_grad:
            return None
        return self.grad

    def _grad_ivar(self):
        """Paddle's gradient Variable: the gradient as a VarBase named ``<name>@GRAD`` sharing its
        storage (``value().get_tensor()`` reads it; a write changes the gradient itself); None
        when there is none, or when it is a cleared row-sparse one (no rows, as Paddle's cleared
        SelectedRows holds no value). A sparse gradient is returned as it is."""
        grad = self._grad_tensor()
        if grad is not None and grad.is_sparse and grad._nnz() == 0:
            return None
        if grad is None or grad.is_sparse or isinstance(grad, VarBase):
            return grad
        with _NO_SUBCLASS():
            view = grad.detach().as_subclass(VarBase)
        view.name = f"{self.name}@GRAD"
        return view

    def gradient(self):
        """The gradient as numpy; ``(values, rows)`` when it is row-sparse; None if there is none,
        or if it is a row-sparse one with no rows (cleared by ``clear_gradient()``: Paddle's cleared
        SelectedRows gradient holds no value and reads as None)."""
        grad = self._grad_tensor()
        if grad is None:
            return None
        if grad.is_sparse:
            if grad._nnz() == 0:
                return None
            grad = _plain(grad)
            return to_numpy(grad._values()), grad._indices()[0].cpu().numpy().copy()
        return to_numpy(grad)

    def clear_gradient(self, set_to_zero: bool = True) -> None:
        """Zero the gradient in place (a sparse one becomes empty); ``set_to_zero=False`` drops it."""
        with _NO_SUBCLASS():
            self._clear_gradient(set_to_zero)

    def _clear_gradient(self, set_to_zero: bool) -> None:
        grad = self._grad_tensor()
        if grad is None:
            return
        if not set_to_zero:
            self.grad = None
        elif grad.is_sparse:
            empty_idx = torch.empty((grad.sparse_dim(), 0), dtype=torch.long, device=grad.device)
            empty_val = torch.empty((0, *grad.shape[grad.sparse_dim() :]), dtype=grad.dtype, device=grad.device)
            self.grad = torch.sparse_coo_tensor(empty_idx, empty_val, grad.shape, check_invariants=False)
        else:
            grad.detach_().zero_()

    clear_grad = clear_gradient

    def set_value(self, value) -> None:
        """Overwrite the value in place from a numpy array or tensor of the same shape and dtype."""
        if isinstance(value, torch.Tensor):
            src = _plain(value)
        elif isinstance(value, np.ndarray):
            src = torch.from_numpy(np.ascontiguousarray(value))
        else:
            raise TypeError(
                f"set_value of {self.name!r}: value must be a numpy array or Tensor, got {type(value).__name__}"
            )
        if list(src.shape) != list(self.shape):
            raise ValueError(f"set_value of {self.name!r}: shape {list(src.shape)} does not match {list(self.shape)}")
        if src.dtype != self.dtype:
            raise ValueError(
                f"set_value of {self.name!r}: dtype {dtype_name(src.dtype)} does not match {dtype_name(self.dtype)}"
            )
        with torch.no_grad():
            _plain(self).copy_(src)

    def value(self) -> "VariableHandle":
        """Paddle's ``VarBase.value()``: a handle whose ``get_tensor()`` is a view of this
        Variable's storage (``.set(array, place)`` overwrites it in place; ``np.array(t)``
        copies it out)."""
        return VariableHandle(self)

    def astype(self, dtype):
        """A copy converted to ``dtype`` ('float32', numpy or torch dtype)."""
        return self.to(torch_dtype(dtype))

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        if not self.is_leaf:
            raise RuntimeError(
                "Only Variables created explicitly by the user (graph leaves) support deepcopy; "
                "detach() this intermediate result first"
            )
        new = _plain(self).clone()
        new.__class__ = VarBase  # a fresh tensor: switch its class in place
        new.requires_grad_(self.requires_grad)
        memo[id(self)] = new
        new.__dict__.update(copy.deepcopy(self.__dict__, memo))
        if self.grad is not None:
            new.grad = copy.deepcopy(self.grad, memo)
        return new

    def __format__(self, spec):
        if self.dim() == 0 and spec:
            return _plain(self).item().__format__(spec)
        return object.__format__(self, spec)

    def __repr__(self, *, tensor_contents=None) -> str:
        indent = " " * len("Tensor(")
        body = np.array2string(self.numpy(), separator=", ", prefix=indent)
        return (
            f"Tensor(shape={list(self.shape)}, dtype={dtype_name(self.dtype)}, place={self.place!r}, "
            f"stop_gradient={self.stop_gradient},\n{indent}{body})"
        )


class DygraphTensorView:
    """``VarBase.value().get_tensor()``: Paddle's LoDTensor of a dygraph Variable. ``set``
    writes a numpy array (or tensor) of the Variable's shape and dtype into it in place, so
    every holder of the Variable (an optimizer's state, a layer) sees the new value; another
    shape or dtype is refused (torchfluid does not resize a live Variable)."""

    def __init__(self, var: "VarBase"):
        self._var = var

    def set(self, value, place=None) -> None:
        self._var.set_value(value)

    def shape(self) -> list[int]:
        return list(self._var.shape)

    def _is_initialized(self) -> bool:
        return True

    def __array__(self, dtype=None, copy=None):
        a = self._var.numpy()
        return a if dtype is None else a.astype(dtype)


class VariableHandle:
    """``VarBase.value()``: Paddle's ``core.Variable`` of a dygraph Variable."""

    def __init__(self, var: "VarBase"):
        self._var = var

    def get_tensor(self) -> DygraphTensorView:
        return DygraphTensorView(self._var)

    def is_initialized(self) -> bool:
        return True


def _rebuild_param(data, requires_grad, state):
    param = ParamBase(data, requires_grad)
    param.__dict__.update(state)
    return param


class ParamBase(VarBase, torch.nn.Parameter):
    """A dygraph parameter: a ``torch.nn.Parameter`` and a ``VarBase``.

    Carries what the optimizer reads: ``_fluid_name`` (its ``name``), ``optimize_attr``,
    ``regularizer``, ``need_clip``, ``do_model_average`` and ``trainable`` (= not
    ``stop_gradient``).
    """

    def __new__(cls, data=None, requires_grad=True):
        data = torch.empty(0) if data is None else _plain(data)
        return torch.Tensor._make_subclass(cls, data, requires_grad)

    def __init__(self, data=None, requires_grad=True):
        d = self.__dict__
        d.setdefault("optimize_attr", {"learning_rate": 1.0})
        d.setdefault("regularizer", None)
        d.setdefault("need_clip", True)
        d.setdefault("do_model_average", True)
        d.setdefault("is_distributed", False)
        d.setdefault("_persistable", True)

    @property
    def trainable(self) -> bool:
        return self.requires_grad

    @trainable.setter
    def trainable(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"trainable must be a bool, got {value!r}")
        self.requires_grad_(value)

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        new = ParamBase(_plain(self).clone(), self.requires_grad)
        memo[id(self)] = new
        new.__dict__.update(copy.deepcopy(self.__dict__, memo))
        new.__dict__["_fluid_name"] = self.name + "_deepcopy"  # as Paddle's ParamBase
        return new

    def __reduce_ex__(self, protocol):
        return _rebuild_param, (_plain(self), self.requires_grad, dict(self.__dict__))

    def __repr__(self, *, tensor_contents=None) -> str:
        return "Parameter containing:\n" + super().__repr__()


def new_parameter(
    tensor: torch.Tensor,
    *,
    name: str,
    trainable: bool = True,
    optimize_attr=None,
    regularizer=None,
    need_clip: bool = True,
    do_model_average: bool = True,
) -> ParamBase:
    """A ``ParamBase`` over ``tensor``'s data with the given attributes."""
    param = ParamBase(tensor, requires_grad=trainable)
    param.__dict__.update(
        _fluid_name=name,
        optimize_attr=dict(optimize_attr or {"learning_rate": 1.0}),
        regularizer=regularizer,
        need_clip=need_clip,
        do_model_average=do_model_average,
    )
    return param


def _named_state_view(key: str, t: torch.Tensor) -> VarBase:
    """An optimizer accumulator as Paddle's dygraph ``state_dict()`` gives it: a VarBase
    named ``key`` over the same storage (``value().get_tensor().set(...)`` writes the state)."""
    with _NO_SUBCLASS():
        view = t.detach().as_subclass(VarBase)
    view.name = key
    return view


STATE_VIEWS.register(ParamBase, _named_state_view)
