"""One switch for array code: CuPy on the GPU tier, NumPy on the CPU tier.

CuPy copies NumPy's interface, so array code written against a module called ``xp`` runs on both::

    xp = get_xp(lab)                 # cupy on the GPU tier, numpy on the CPU tier
    x = xp.linspace(0.0, 1.0, 1_000)
    y = xp.sqrt(x) * 2.0

    def normalise(x):                # generic: works for whatever array it is given
        xp = get_array_module(x)
        return (x - x.mean()) / x.std()

Introduced in lab 05 (CuPy and interoperability). The CPU tier never imports CuPy: CuPy needs a
driver to allocate anything, and is installed only with the ``gpu`` extra.

:func:`strict_namespace` is for tests: a NumPy-backed ``xp`` whose arrays refuse to be turned into
NumPy arrays, as CuPy's do ("Implicit conversion to a NumPy array is not allowed"). Code that calls
``np.`` where it should call ``xp.`` fails with it on the CPU tier, as it would on a GPU.
"""

from __future__ import annotations

import sys
import types

import numpy as np


def get_xp(lab=None):
    """The array module for this run: ``cupy`` on the GPU tier, ``numpy`` otherwise.

    ``lab`` is the context :func:`techday.setup` returned (or anything with ``on_gpu``); without it,
    the tier ``techday.setup`` resolved (``$TECHDAY_TIER_RESOLVED``) decides. On the GPU tier a missing
    CuPy is an error that says how to install it, never a silent fall back to NumPy.
    """
    import os

    on_gpu = lab.on_gpu if lab is not None else os.environ.get("TECHDAY_TIER_RESOLVED") == "gpu"
    if not on_gpu:
        return np
    try:
        import cupy
    except ImportError as exc:
        from .i18n import msg

        raise ImportError(msg("techday.cupy_missing",
                              "the GPU tier needs CuPy: the image's locked set (cupy-cuda13x, docker/locks/), or "
                              "pip install -e \".[gpu]\" (cupy-cuda12x)")) from exc
    return cupy


def get_array_module(*arrays):
    """The module that owns ``arrays``, like ``cupy.get_array_module``: ``cupy`` if any is a CuPy
    array, the strict test namespace for its arrays, ``numpy`` otherwise. Never imports CuPy."""
    cupy = sys.modules.get("cupy")
    for a in arrays:
        if isinstance(a, StrictArray):
            return STRICT
        if cupy is not None and isinstance(a, cupy.ndarray):
            return cupy
    return np


# --- the strict test namespace --------------------------------------------------------------------

def _unwrap(obj):
    if isinstance(obj, StrictArray):
        return obj._a
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unwrap(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _unwrap(v) for k, v in obj.items()}
    return obj


def _wrap(obj):
    if isinstance(obj, np.ndarray):
        return StrictArray(obj)
    if isinstance(obj, tuple):
        return tuple(_wrap(o) for o in obj)
    if isinstance(obj, list):
        return [_wrap(o) for o in obj]
    return obj


def _forward(fn):
    def call(*args, **kwargs):
        return _wrap(fn(*_unwrap(args), **_unwrap(kwargs)))
    call.__name__ = getattr(fn, "__name__", "call")
    return call


class StrictArray:
    """A NumPy array in disguise that behaves like a CuPy array towards NumPy: ``np.asarray(a)``,
    ``np.exp(a)`` and ``np.sum(a)`` raise ``TypeError``; ``xp.exp(a)``, ``a.sum()`` and operators work.
    (Stricter than CuPy, which lets NumPy's functions dispatch to it: say ``xp.``, not ``np.``.)"""

    __array_ufunc__ = None  # NumPy's ufuncs refuse this operand

    def __init__(self, a):
        self._a = np.asarray(a)

    def __array__(self, *args, **kwargs):
        from .i18n import msg

        raise TypeError(msg("techday.xp_implicit_conversion",
                            "Implicit conversion to a NumPy array is not allowed (a device array, as in CuPy): "
                            "use xp = get_array_module(x) and xp.* functions, or .get() to copy to the host"))

    def __array_function__(self, func, types, args, kwargs):
        return NotImplemented  # np.sum(a), np.max(a), ... raise TypeError

    def get(self):
        """Copy to the host, as ``cupy.ndarray.get`` does."""
        return self._a.copy()

    def __getattr__(self, name):
        if name.startswith("__"):  # no __array_interface__, __array_struct__, __dlpack__: no way to NumPy
            raise AttributeError(name)
        value = getattr(self._a, name)
        return _forward(value) if callable(value) else _wrap(value)

    def __getitem__(self, key):
        return _wrap(self._a[_unwrap(key)])

    def __setitem__(self, key, value):
        self._a[_unwrap(key)] = _unwrap(value)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(v) for v in self._a)

    def __repr__(self):
        return f"StrictArray({self._a!r})"

    def __bool__(self):
        return bool(self._a)

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __index__(self):
        return self._a.__index__()

    __hash__ = None


def _binary(name):
    def op(self, other):
        return _wrap(getattr(self._a, name)(_unwrap(other)))
    op.__name__ = name
    return op


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor",
              "lshift", "rshift"):
    for _form in (f"__{_name}__", f"__r{_name}__", f"__i{_name}__"):
        if hasattr(np.ndarray, _form):
            setattr(StrictArray, _form, _binary(_form))
for _form in ("__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__"):
    setattr(StrictArray, _form, _binary(_form))
for _form in ("__neg__", "__pos__", "__abs__", "__invert__"):
    setattr(StrictArray, _form, (lambda f: lambda self: _wrap(getattr(self._a, f)()))(_form))


class _StrictNamespace(types.ModuleType):
    """``xp`` for :class:`StrictArray`: every NumPy function, taking and returning strict arrays."""

    def __getattr__(self, name):
        value = getattr(np, name)
        if callable(value) and not isinstance(value, type):
            return _forward(value)
        return value  # dtypes, constants, np.float32 and friends

    def asnumpy(self, a):
        """Copy to the host, as ``cupy.asnumpy`` does."""
        return np.array(_unwrap(a))


STRICT = _StrictNamespace("strict_xp", "NumPy behind a device-like wall (techday.xp.strict_namespace)")


def strict_namespace():
    """The strict test namespace: ``strict.asarray(host)`` makes a :class:`StrictArray`."""
    return STRICT
