"""RMSProp's fused update path: the optimizer's items through :class:`FlatGroup` kernels.

The pipeline (validation, precision, clipping, regularization, learning rates) is the
optimizer's own; only the final update changes: the ``(param, grad, group, lr, prep)``
items of one parameter group, device and dtype go to one fused kernel call instead of
one reference-kernel call per parameter, their clip steps and L2/L1 terms (``prep``,
see :mod:`torchfluid.optimizer.fold`) folded into the kernel's pass over the gradient
rather than materialised as new gradient tensors. What the fused kernel cannot express (sparse
gradients, master weights, state in another dtype, decoupled decay, bias correction,
non-contiguous tensors, devices without a kernel) takes the reference kernel, on the
same state tensors.

State stays where the optimizer keeps it: ``opt.state[p]`` holds *views* of the
group's flat buffers. Every step checks (by identity) that those records are still the
views; a record replaced meanwhile (``set_state_dict``, ``opt.to()``, a new parameter,
a group switching ``centered``/``momentum``) is copied into the flat buffers first, and
a group whose parameter set, device or dtype changed gets a rebuilt flat layout.
"""

from __future__ import annotations

import torch

from .fold import NO_PREP, kernel_extras

__all__ = ["FusedRMSPropUpdate"]

_EMPTY: dict = {}
_FLOATS = (torch.float32, torch.float64)


def _layout_current(fg) -> bool:
    """Whether every parameter of flat group ``fg`` still has the device, dtype, size and
    layout the group was built for (else its next step rebuilds it)."""
    return all(p.device == fg.device and p.dtype == fg.dtype and p.numel() == n and p.is_contiguous()
               for p, n in zip(fg.params, fg.numel))


def _flat():
    """torchfluid.kernels.flat, imported on first use (it imports numpy's table helpers;
    the kernels themselves load on their first call)."""
    from ..kernels import flat

    return flat


def _records_current(state, records) -> bool:
    """Whether every ``(param, ((acc, view), ...))`` of ``records`` still has its views
    as ``state[param][acc]`` (nothing replaced them since the last sync)."""
    for p, views in records:
        st = state.get(p, _EMPTY)
        for acc, view in views:
            if st.get(acc) is not view:
                return False
    return True


class FusedRMSPropUpdate:
    """The fused update path of one RMSProp optimizer (``required``: fused=True)."""

    def __init__(self, opt, *, required: bool):
        self.opt = opt
        self.required = required
        self.flat: dict = {}  # (id(group), device, dtype) -> kernels.flat.FlatGroup
        self._synced: dict[tuple, tuple] = {}
        self._layout: dict[tuple, tuple] = {}  # key -> (group params seen, flags, index)
        self._created: list = []  # params whose state record the last _sync_state created

    # -------------------------------------------------------------- eligibility
    def _param_ok(self, p: torch.Tensor, group) -> bool:
        """Whether ``p`` belongs in a flat group (checked when a layout is built; the
        flat group re-checks dtype, size and layout at every step)."""
        shard = getattr(self.opt, "_sharding", None)
        if shard is not None and shard.engaged and not shard.owns(p):
            return False  # ZeRO-1: another rank keeps its state; no flat buffer here
        return self.opt._fused_compatible(p, group) and _flat().fused_supported(p, warn=not self.required)

    @staticmethod
    def _grad_ok(p, g) -> bool:
        """A dense contiguous gradient of the parameter's dtype (the pipeline has already
        checked that it is a tensor on the parameter's device)."""
        return g.layout == torch.strided and g.dtype == p.dtype and g.is_contiguous()

    # ------------------------------------------------------------------ layout
    def _group_for(self, key, group, *, rebuild: bool = False):
        """The flat group of ``key`` and its ``id(param) -> index`` map, rebuilt when the
        group's parameter list or its centered/momentum flags changed."""
        gid, device, dtype = key
        members = group["params"]
        flags = (bool(group["centered"]), group["momentum"] != 0)
        cached = self._layout.get(key)
        if (not rebuild and cached is not None and cached[1] == flags
                and len(cached[0]) == len(members)
                and all(a is b for a, b in zip(cached[0], members))):
            return self.flat[key], cached[2]
        params = [q for q in members
                  if q.device == device and q.dtype == dtype and self._param_ok(q, group)]
        fg = self.flat[key] = _flat().FlatGroup(params, centered=flags[0], momentum=flags[1])
        index = {id(p): i for i, p in enumerate(params)}
        self._layout[key] = (list(members), flags, index)
        self._synced.pop(key, None)
        return fg, index

    def _sync_state(self, key, fg, group, stepped) -> None:
        """Make ``opt.state[p]`` the flat views, copying in whatever replaced them.

        Records exist only for parameters updated at least once (as on the reference
        path): ``stepped`` are this step's; the others keep what they had, if anything.
        """
        state = self.opt.state
        self._created = []
        synced = self._synced.get(key)
        if synced is not None:
            records, have = synced
            if all(id(p) in have for p in stepped) and _records_current(state, records):
                return
        accs = self.opt._accumulator_names(group)
        stepped_ids = {id(p) for p in stepped}
        records, have = [], set()
        with torch.no_grad():
            for i, p in enumerate(fg.params):
                st = state.get(p) or {}
                if not st and id(p) not in stepped_ids:
                    continue  # never updated: no record yet
                views = fg.state(i)
                for acc in accs:
                    view, old = views[acc], st.get(acc)
                    if old is view:
                        pass
                    elif old is not None:
                        if old.shape != view.shape:
                            raise ValueError(
                                f"optimizer state {acc!r} of parameter {self.opt._names.get(p, '?')!r} has "
                                f"shape {list(old.shape)}, but the parameter has shape {list(p.shape)}; "
                                "a resized parameter needs fresh state (del optimizer.state[param])")
                        view.copy_(old.detach().to(device=view.device, dtype=view.dtype))
                    elif acc == "mean_square":
                        view.fill_(group["initial_mean_square"])
                    else:
                        view.zero_()
                record = {acc: views[acc] for acc in accs}
                if not st:
                    self.opt._codec.apply_pending(self.opt._names[p], record)
                    self._created.append(p)
                state[p] = record
                records.append((p, tuple((acc, views[acc]) for acc in accs)))
                have.add(id(p))
        self._synced[key] = (records, have)

    # ------------------------------------------------------------------ update
    def update(self, items) -> list:
        """Run the fused kernel on what it can take; return the items left over."""
        rest, buckets = [], {}
        for item in items:
            p, g, group, lr, prep = item
            fits = p.dtype in _FLOATS and self._grad_ok(p, g)
            if not (fits and (prep is NO_PREP or prep.foldable())):
                g = prep.apply(p, g)  # what the reference path gets (it may now fit)
                item = (p, g, group, lr, NO_PREP)
                fits = p.dtype in _FLOATS and self._grad_ok(p, g)
            if fits:
                buckets.setdefault((id(group), p.device, p.dtype), []).append(item)
            else:
                rest.append(item)
        for key, bucket in buckets.items():
            group = bucket[0][2]
            if not self.opt._fused_compatible(bucket[0][0], group):  # group options
                rest.extend(bucket)
                continue
            for attempt in (0, 1):
                fg, index = self._group_for(key, group, rebuild=attempt == 1)
                taken = [it for it in bucket if id(it[0]) in index]
                if len(taken) != len(bucket):
                    rest.extend(it for it in bucket if id(it[0]) not in index)
                try:
                    self._step(key, fg, index, group, taken)
                    break
                except ValueError:  # a parameter moved, was cast or resized: rebuild once
                    for p in self._created:  # records made for the stale layout: start again
                        self.opt.state.pop(p, None)
                    in_bucket = {id(it) for it in bucket}  # by identity: items hold tensors
                    rest = [it for it in rest if id(it) not in in_bucket]
                    if attempt:
                        raise
        if rest and self.required:
            p, g = rest[0][0], rest[0][1]
            package = _flat().missing(p.device.type)
            if package is not None:
                raise ValueError(f"fused=True: parameter {self.opt._names.get(p, '?')!r} is on {p.device.type}, "
                                 f"whose fused kernel needs {package}, which is not installed; allowed: "
                                 f"pip install {package}, or fused=None to fall back to the reference kernel")
            raise ValueError(
                f"fused=True: parameter {self.opt._names.get(p, '?')!r} ({p.dtype} on "
                f"{p.device}, gradient {'sparse' if g.is_sparse else g.dtype}) cannot take "
                "the fused kernel; allowed: dense contiguous float32/float64 parameters and "
                "gradients of the same dtype, without master weights, decoupled decay or "
                "bias correction (or use fused=None to fall back automatically)")
        return rest

    def _step(self, key, fg, index, group, taken) -> None:
        self._sync_state(key, fg, group, [it[0] for it in taken])
        grads = [None] * len(fg.params)
        lrs = [0.0] * len(fg.params)
        preps = [None] * len(fg.params)
        for p, g, _, lr, prep in taken:
            i = index[id(p)]
            grads[i], lrs[i], preps[i] = g, lr, prep
        fg.step(grads=grads, lr=lrs, rho=group["rho"], epsilon=group["epsilon"],
                momentum=group["momentum"], eps_in_sqrt=group["eps_in_sqrt"],
                lr_in_momentum=group["lr_in_momentum"], nesterov=group["nesterov"],
                **kernel_extras(preps, fg.device))

    # --------------------------------------------------------------- gradients
    def zero_grads(self) -> set:
        """Clear the gradients of every flat group (one memset each); return their params.

        A group whose parameters moved, changed dtype or size since its last step is
        dropped here (its next step rebuilds it) rather than handed foreign gradients.
        """
        done = set()
        for key, fg in list(self.flat.items()):
            if not _layout_current(fg):
                del self.flat[key]
                self._synced.pop(key, None)
                self._layout.pop(key, None)
                continue
            fg.zero_grads()
            done.update(fg.params)
        return done
