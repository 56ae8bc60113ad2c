"""The numba sources of the CPU kernels (imported only to compile them).

Each kernel is a C callback (``numba.cfunc``) over raw pointers: tables are row-major
int64 / dtype buffers, each variant's switches are closure constants (numba prunes
their dead branches before typing, so one small straight function is compiled per
variant), and the chunk loop of every thread takes chunks from a shared atomic counter
until none is left. The update kernels share one chunk loop (:func:`_update_kernel`)
and supply only their per-element maths and state columns, as inlined helpers.
:mod:`torchfluid.kernels.kernel_cache` compiles them on a cache miss
(:func:`compile_kernel`) and otherwise loads their object code without numba (its
identity hashes this file's source, so a change to the loop or to any kernel makes
old entries stale).
The maths is documented in :mod:`torchfluid.kernels.fused_cpu`.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir as llvmir
from numba import types
from numba.core.extending import intrinsic

from .table import G, HI, L1, L2, LO, LR, MG, MOM, MS, P, SCALE

__all__ = ["compile_kernel"]


@intrinsic
def _at(typingctx, address, lo, dtype):
    """``(T*) address + lo``: element ``lo`` of the ``T`` array at an int64 address
    (``dtype``: the numba type ``T``, a compile-time constant)."""
    ptr_t = types.CPointer(dtype.instance_type)

    def codegen(context, builder, signature, args):
        base = builder.inttoptr(args[0], context.get_value_type(ptr_t))
        return builder.gep(base, [args[1]])

    return ptr_t(address, lo, dtype), codegen


@intrinsic
def _fma(typingctx, a, b, c):
    """IEEE fused multiply-add ``a * b + c`` with one rounding (llvm.fma)."""

    def codegen(context, builder, signature, args):
        ty = args[0].type
        fnty = llvmir.FunctionType(ty, [ty, ty, ty])
        fn = builder.module.declare_intrinsic("llvm.fma", [ty], fnty)
        return builder.call(fn, args)

    return a(a, b, c), codegen


@intrinsic
def _take(typingctx, counter):
    """Atomically ``counter[0] += 1`` through an ``int64*`` and return the old value."""

    def codegen(context, builder, signature, args):
        one = llvmir.Constant(llvmir.IntType(64), 1)
        return builder.atomic_rmw("add", args[0], one, "monotonic")

    return types.int64(counter), codegen


@intrinsic
def _next(typingctx, counter):
    """:func:`_take` on an int64 array's first element (for jitted callers)."""

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        one = llvmir.Constant(llvmir.IntType(64), 1)
        return builder.atomic_rmw("add", ary.data, one, "monotonic")

    return types.int64(counter), codegen


@numba.njit(inline="always")
def _hyper_row(hyper, h):
    """Row ``h // 6`` of the hyper table: ``(lr, scale, clip_min, clip_max, l2, l1)``."""
    return hyper[h + LR], hyper[h + SCALE], hyper[h + LO], hyper[h + HI], hyper[h + L2], hyper[h + L1]


@numba.njit(inline="always")
def _prepared_grad(gj, pj, scale, cmin, cmax, l2, l1, zero, one):
    """One gradient element after the steps folded into every kernel, in Paddle's order:
    the loss scale, the value clip, then L2 (``+ l2 * p``) and L1 (``+ l1 * sign(p)``),
    each rounded as the reference path's separate tensor ops round it."""
    gj = gj * scale
    gj = cmin if gj < cmin else (cmax if gj > cmax else gj)
    gj = gj + l2 * pj if l2 != zero else gj
    sgn = one if pj > zero else (-one if pj < zero else zero)
    return gj + l1 * sgn if l1 != zero else gj


_I64P = types.CPointer(types.int64)
_NB = {"float32": types.float32, "float64": types.float64}
_OPTIONS = {"fastmath": False, "error_model": "numpy"}  # IEEE roundings, as the reference kernels


@numba.njit(inline="always")
def _no_row(consts, t):
    """No per-tensor constant (the ``row`` of every kernel but Adam's)."""
    return ()


def _update_kernel(dtype: str, state: tuple, setup, element, row=_no_row):
    """The chunk loop that every update kernel runs: Python source, signature and options.

    The one argument is an ``int64`` block ``(addr, chunks, k, counter, hyper, scalars,
    flag, flag, aux)``: the addresses of the tables of :mod:`torchfluid.kernels.table`,
    the chunk count, the kind's runtime flags and the address of an optional per-tensor
    array. That is the C type ``void (*)(void *)`` of an OpenMP outlined function, so the
    same entry point runs on the calling thread, on pool threads, or as the body of
    ``GOMP_parallel`` on torch's own OpenMP team. Each thread takes chunks ``(tensor,
    lo, hi)`` from the shared atomic counter until none is left, skips a tensor whose
    gradient address is 0, reads the tensor's hyper-table row and, per element, the
    gradient after the folded steps (:func:`_prepared_grad`); the kernel supplies:

    * ``state``: the address-table columns of its state (up to three, e.g. ``(MS, MG)``),
      handed to ``element`` as pointers ``s0, s1, s2`` at the chunk's start (absent ones:
      the gradient's, never read);
    * ``setup(block, sc)``: the call's constants (from the scalar row ``sc`` and the
      block's flags), a tuple whose last two entries are the dtype's 0 and 1;
    * ``row(consts, t)``: constants of tensor ``t`` (a tuple, read once per chunk);
    * ``element(j, pj, gj, lr, consts, trow, s0, s1, s2)``: the new ``p[j]``, after
      writing the element's state.

    All three are ``njit(inline="always")`` functions: closure constants, inlined before
    typing, so numba compiles one straight loop per variant, as if written out.
    """
    DT, I64 = _NB[dtype], types.int64
    C0, C1, C2 = (*state, -1, -1, -1)[:3]

    def update(block):
        addr, chunks, k = _at(block[0], 0, I64), _at(block[1], 0, I64), block[2]
        counter, hyper, sc = _at(block[3], 0, I64), _at(block[4], 0, DT), _at(block[5], 0, DT)
        consts = setup(block, sc)
        zero, one = consts[-2], consts[-1]
        while True:
            c = _take(counter)
            if c >= k:
                break
            t, lo, hi = chunks[3 * c], chunks[3 * c + 1], chunks[3 * c + 2]
            a = 5 * t
            if addr[a + G] == 0:
                continue
            p = _at(addr[a + P], lo, DT)
            g = _at(addr[a + G], lo, DT)
            s0 = _at(addr[a + C0], lo, DT) if C0 >= 0 else g
            s1 = _at(addr[a + C1], lo, DT) if C1 >= 0 else g
            s2 = _at(addr[a + C2], lo, DT) if C2 >= 0 else g
            lr, scale, cmin, cmax, l2, l1 = _hyper_row(hyper, 6 * t)
            trow = row(consts, t)
            for j in range(hi - lo):
                pj = p[j]
                gj = _prepared_grad(g[j], pj, scale, cmin, cmax, l2, l1, zero, one)
                p[j] = element(j, pj, gj, lr, consts, trow, s0, s1, s2)

    return update, types.void(_I64P), _OPTIONS


def _rmsprop_kernel(dtype: str, centered: bool, velocity: bool, paddle: bool = False):
    """RMSProp (module maths of :mod:`torchfluid.kernels.fused_cpu`), one (dtype, centered,
    velocity, paddle) variant: columns MS, MG (centered) and MOM (velocity); ``scalars``:
    ``(rho, 1 - rho, eps inside sqrt, eps outside sqrt, momentum, 0, 1)``; runtime flags
    ``(lr_in_momentum, nesterov)``. ``paddle``: the averages as Paddle's CPU kernel rounds
    them (``rho * ms + ((1 - rho) * g) * g``, products then sums), else as torch's
    ``addcmul_``/``add_(alpha=)`` (fused multiply-adds); with ``lr_in_momentum`` the step is
    Paddle's ``(lr * g) / den``, else ``(g / den) * lr``, as torch's.

    lim / nest (lr_in_momentum / nesterov) stay runtime booleans: loop-invariant, LLVM
    turns them into selects in the one vectorized loop.
    """
    CENTERED, VELOCITY, PADDLE = bool(centered), bool(velocity), bool(paddle)

    @numba.njit(inline="always")
    def setup(block, sc):
        return sc[0], sc[1], sc[2], sc[3], sc[4], block[6] != 0, block[7] != 0, sc[5], sc[6]

    @numba.njit(inline="always")
    def element(j, pj, gj, lr, consts, trow, ms, mg, mom):
        rho, rho1, e_in, e_out, beta, lim, nest, zero, one = consts
        if PADDLE:  # Paddle's CPU kernel: products rounded, then the sums
            msj = (rho1 * gj) * gj + ms[j] * rho
        else:  # torch's addcmul_
            msj = _fma(rho1 * gj, gj, ms[j] * rho)
        ms[j] = msj
        if CENTERED:
            mgj = gj * rho1 + mg[j] * rho if PADDLE else _fma(gj, rho1, mg[j] * rho)
            mg[j] = mgj
            var = msj - mgj * mgj
            var = zero if var < zero else var
        else:
            var = msj
        den = np.sqrt(var + e_in) + e_out
        if lim:  # lr inside the velocity (Paddle): (lr * g) / den
            ul = (gj * lr) / den
            if VELOCITY:
                m = mom[j] * beta + ul
                mom[j] = m
                upd = _fma(m, beta, ul) if nest else m
            else:
                upd = ul
        else:
            u = gj / den
            if VELOCITY:
                m = mom[j] * beta + u
                mom[j] = m
                upd = (_fma(m, beta, u) if nest else m) * lr
            else:
                upd = u * lr
        return pj - upd

    return _update_kernel(dtype, (MS, MG, MOM), setup, element)


def _momentum_kernel(dtype: str):
    """Paddle's Momentum (:func:`torchfluid.kernels.momentum.momentum_`) over an address
    table: column MS is the velocity. ``scalars``: ``(mu, 1 - dampening, 0, 1)``; one
    runtime flag, ``nesterov``."""

    @numba.njit(inline="always")
    def setup(block, sc):
        return sc[0], block[6] != 0, sc[1], sc[2], sc[3]

    @numba.njit(inline="always")
    def element(j, pj, gj, lr, consts, trow, vel, s1, s2):
        mu, nest, undamped = consts[0], consts[1], consts[2]
        # velocity.mul_(mu) rounded, then .add_(g, alpha=1 - dampening) as one fused
        # multiply-add (torch's CPU add with alpha); with alpha 1 exactly velocity * mu + g
        v = _fma(gj, undamped, vel[j] * mu)
        vel[j] = v
        upd = (v * mu + gj) * lr if nest else v * lr
        return pj - upd

    return _update_kernel(dtype, (MS,), setup, element)


def _adagrad_kernel(dtype: str):
    """Paddle's Adagrad (:func:`torchfluid.kernels.adagrad.adagrad_`) over an address
    table: column MS is the moment. ``scalars``: ``(epsilon, 0, 1)``; no runtime flag."""

    @numba.njit(inline="always")
    def setup(block, sc):
        return sc[0], sc[1], sc[2]

    @numba.njit(inline="always")
    def element(j, pj, gj, lr, consts, trow, mom, s1, s2):
        eps = consts[0]
        m = mom[j] + gj * gj  # g * g rounded, then added (never fused)
        mom[j] = m
        return pj - (gj * lr) / (np.sqrt(m) + eps)

    return _update_kernel(dtype, (MS,), setup, element)


def _sgd_kernel(dtype: str):
    """Plain SGD (:func:`torchfluid.kernels.sgd.sgd_`): ``p = fma(g, -lr, p)``, one
    rounding, as torch's ``sub_(g, alpha=lr)`` on CPU. No state column; ``scalars``:
    ``(0, 1)``; no runtime flag."""

    @numba.njit(inline="always")
    def setup(block, sc):
        return sc[0], sc[1]

    @numba.njit(inline="always")
    def element(j, pj, gj, lr, consts, trow, s0, s1, s2):
        return _fma(gj, -lr, pj)

    return _update_kernel(dtype, (), setup, element)


def _adam_kernel(dtype: str, decoupled: bool = False, amsgrad: bool = False):
    """Paddle's Adam (:func:`torchfluid.kernels.adam.adam_`) over an address table:
    column MS is moment1, MG moment2; the hyper table's lr column holds each tensor's
    ``lr_t`` and the argument block's ninth entry the address of a per-tensor ``eps_t``
    array (both computed from the beta powers by the caller). ``scalars``: ``(beta1,
    1 - beta1, beta2, 1 - beta2, 0, 1)`` (``1 - beta`` computed in the dtype, as Paddle's
    kernel); no runtime flag. ``decoupled`` (AdamW, Paddle's
    ``adamw`` op): the per-tensor array holds ``(eps_t, decay)`` pairs and the parameter
    first becomes ``p - decay * p`` with its ``decay = lr * coeff`` (left as it is where that is 0), after
    the folded gradient terms read it, as the reference path orders them. ``amsgrad``:
    column MOM holds ``moment2_max``, ``max(moment2_max, moment2)`` after the moments'
    update (NaN propagating, as ``torch.maximum``), and the denominator takes it."""
    DT = _NB[dtype]

    @numba.njit(inline="always")
    def setup(block, sc):
        return _at(block[8], 0, DT), sc[0], sc[1], sc[2], sc[3], sc[4], sc[5]

    @numba.njit(inline="always")
    def row(consts, t):
        if decoupled:
            return consts[0][2 * t], consts[0][2 * t + 1]  # eps_t, decay of tensor t
        return consts[0][t], consts[6]  # eps_t of tensor t (the decay slot: never read)

    @numba.njit(inline="always")
    def element(j, pj, gj, lr, consts, trow, m1, m2, s2):
        b1, b1c, b2, b2c = consts[1], consts[2], consts[3], consts[4]
        eps = trow[0]
        u = _fma(gj, b1c, m1[j] * b1)  # m1.mul_(beta1).add_(g, alpha=1 - beta1)
        m1[j] = u
        v = _fma(b2c * gj, gj, m2[j] * b2)  # m2.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        m2[j] = v
        if amsgrad:
            top = s2[j]
            if v > top or v != v:  # torch.maximum(moment2_max, moment2): NaN wins
                top = v
            s2[j] = top
            v = top
        if decoupled and trow[1] != consts[5]:
            pj = pj - trow[1] * pj  # p - (lr * coeff) * p, Paddle's CPU adamw; skipped where lr * coeff is 0
        return pj - (u / (np.sqrt(v) + eps)) * lr

    return _update_kernel(dtype, (MS, MG, MOM) if amsgrad else (MS, MG), setup, element, row)


def _adamax_kernel(dtype: str):
    """Paddle's Adamax (:func:`torchfluid.kernels.adamax.adamax_`) over an address table:
    column MS is the moment, MG ``inf_norm``; the hyper table's lr column holds each
    tensor's ``lr / (1 - beta1_pow)`` (computed by the caller). ``scalars``: ``(beta1,
    1 - beta1, beta2, epsilon, 0, 1)``; no runtime flag."""

    @numba.njit(inline="always")
    def setup(block, sc):
        return sc[0], sc[1], sc[2], sc[3], sc[4], sc[5]

    @numba.njit(inline="always")
    def element(j, pj, gj, lr, consts, trow, mom, inf, s2):
        b1, b1c, b2, eps = consts[0], consts[1], consts[2], consts[3]
        u = _fma(gj, b1c, mom[j] * b1)  # moment.mul_(beta1).add_(g, alpha=1 - beta1)
        mom[j] = u
        a = abs(gj)
        b = inf[j] * b2 + eps  # inf_norm.mul_(beta2).add_(epsilon): two roundings
        top = a if (a > b or a != a) else b  # torch.maximum(|g|, .): NaN wins
        inf[j] = top
        return pj - (u / top) * lr

    return _update_kernel(dtype, (MS, MG), setup, element)


def _adadelta_kernel(dtype: str):
    """Paddle 2.5's Adadelta (:func:`torchfluid.kernels.adadelta.adadelta_`) over an
    address table: column MS is ``avg_squared_grad``, MG ``avg_squared_update``.
    ``scalars``: ``(rho, 1 - rho, epsilon, 0, 1)``; no runtime flag."""

    @numba.njit(inline="always")
    def setup(block, sc):
        return sc[0], sc[1], sc[2], sc[3], sc[4]

    @numba.njit(inline="always")
    def element(j, pj, gj, lr, consts, trow, asg, asu, s2):
        rho, rhoc, eps = consts[0], consts[1], consts[2]
        sg = _fma(gj * gj, rhoc, asg[j] * rho)  # avg_squared_grad.mul_(rho).add_(g * g, alpha=1 - rho)
        asg[j] = sg
        up = (np.sqrt(asu[j] + eps) / np.sqrt(sg + eps)) * gj  # Paddle's -update: two square roots
        asu[j] = _fma(up * up, rhoc, asu[j] * rho)  # avg_squared_update.mul_(rho).add_(u * u, alpha=1 - rho)
        return pj - up * lr

    return _update_kernel(dtype, (MS, MG), setup, element)


def _sq_sums_kernel(dtype: str):
    """Per-chunk float64 ``sum(x*x)`` of column ``col`` (re-association allowed); one
    ``int64`` argument block ``(addr, col, chunks, k, counter, out)`` as for rmsprop."""
    DT, I64 = _NB[dtype], types.int64

    def sq_sums(block):
        addr, col, chunks, k = _at(block[0], 0, I64), block[1], _at(block[2], 0, I64), block[3]
        counter, out = _at(block[4], 0, I64), _at(block[5], 0, types.float64)
        while True:
            c = _take(counter)
            if c >= k:
                break
            t, lo, hi = chunks[3 * c], chunks[3 * c + 1], chunks[3 * c + 2]
            acc = 0.0
            if addr[5 * t + col] != 0:
                x = _at(addr[5 * t + col], lo, DT)
                for j in range(hi - lo):
                    v = np.float64(x[j])
                    acc += v * v
            out[c] = acc

    sig = types.void(_I64P)
    return sq_sums, sig, {"fastmath": {"reassoc", "nsz", "contract"}, "error_model": "numpy"}


_BUILDERS = {
    "rmsprop": _rmsprop_kernel,
    "momentum": _momentum_kernel,
    "adagrad": _adagrad_kernel,
    "sgd": _sgd_kernel,
    "adam": _adam_kernel,
    "adamax": _adamax_kernel,
    "adadelta": _adadelta_kernel,
    "sq_sums": _sq_sums_kernel,
}


def compile_kernel(kind: str, dtype: str, *flags: bool):
    """Compile one variant (``kind`` in rmsprop / momentum / adagrad / sgd / adam / adamax / adadelta /
    sq_sums,
    ``dtype`` float32 / float64, the kind's flags) and return its ``numba.cfunc`` (``.address``: the C
    entry point; ``._library``: the compiled code)."""
    pyfunc, sig, options = _BUILDERS[kind](dtype, *flags)
    return numba.cfunc(sig, nopython=True, **options)(pyfunc)
