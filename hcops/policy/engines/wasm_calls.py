"""Calls between Python and a wasmtime instance, cheaper than the public API where wasmtime allows.

``Func.__call__`` builds a FuncType and converts every value through ``Val`` on each call, about ten
times the cost of the call itself; the gate makes thousands (one per ``sprintf`` in the policies, each
with two calls back into the module). ``Call`` goes through ``wasmtime_func_call_unchecked`` and
``host_func`` through ``wasmtime_func_new_unchecked`` (i32 parameters and results only), both in the
wasmtime package's own ctypes bindings; when those are missing (another wasmtime), the public API.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

import wasmtime as wt


class Call:
    """A call of an exported function with i32 parameters and at most one i32 result."""

    def __init__(self, store: wt.Store, func: wt.Func) -> None:
        ty = func.type(store)
        self._n = max(len(ty.params), len(ty.results))
        self._store = store
        self._func = func
        self._fast = _fast_available()
        if self._fast:
            from wasmtime import _ffi

            self._raw = (_ffi.wasmtime_val_raw_t * max(self._n, 1))()
            self._ctx = store._context()  # noqa: SLF001 - see the module docstring
            self._ref = ctypes.byref(func._func)  # noqa: SLF001
            self._call_unchecked = _ffi.wasmtime_func_call_unchecked
            self._trap = ctypes.POINTER(_ffi.wasm_trap_t)()
            self._trap_ref = ctypes.byref(self._trap)

    def __call__(self, *args: int) -> int:
        if not self._fast:
            out = self._func(self._store, *args)
            return int(out) if out is not None else 0
        raw = self._raw
        for i, a in enumerate(args):
            raw[i].i32 = a
        trap = self._trap
        error = self._call_unchecked(self._ctx, self._ref, raw, self._n, self._trap_ref)
        if error or trap:
            from wasmtime._func import maybe_raise_last_exn

            caught = wt.Trap._from_ptr(trap) if trap else None  # noqa: SLF001 - takes ownership
            self._trap = ctypes.POINTER(wt._ffi.wasm_trap_t)()  # noqa: SLF001
            self._trap_ref = ctypes.byref(self._trap)
            maybe_raise_last_exn()  # an exception of a host function comes first
            if caught is not None:
                raise caught
            raise wt.WasmtimeError._from_ptr(error)  # noqa: SLF001
        return int(raw[0].i32)


def _fast_available() -> bool:
    try:
        from wasmtime import _ffi, _func

        return all(hasattr(_ffi, n) for n in (
            "wasmtime_func_call_unchecked", "wasmtime_val_raw_t", "wasm_trap_t", "wasmtime_func_new_unchecked",
            "wasmtime_func_unchecked_callback_t", "wasmtime_func_t")) and hasattr(_func, "LAST_EXCEPTION")
    except ImportError:  # pragma: no cover - another wasmtime layout
        return False


_NO_FINALIZER: Any = None


def host_func(store: wt.Store, ty: wt.FuncType, fn: Callable[..., int | None], keep: list[Any]) -> wt.Func:
    """A host function taking and returning i32s; through ``wasmtime_func_new_unchecked`` where available
    (the public trampoline converts every value through ``Val``)."""
    if not _fast_available():
        return wt.Func(store, ty, fn)
    global _NO_FINALIZER
    from wasmtime import _ffi
    from wasmtime import _func as wf

    if _NO_FINALIZER is None:
        _NO_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda _env: None)
    nparams = len(ty.params)
    has_result = bool(ty.results)

    def callback(_env: Any, _caller: Any, raw: Any, _n: int) -> int:
        try:
            out = fn(*[raw[i].i32 for i in range(nparams)])
            if has_result:
                raw[0].i32 = int(out or 0)
            return 0
        except BaseException as exc:  # noqa: BLE001 - handed to the caller of the wasm function
            wf.LAST_EXCEPTION = exc  # type: ignore[assignment]
            trap = wt.Trap("python exception")._consume()  # noqa: SLF001
            return ctypes.cast(trap, ctypes.c_void_p).value or 0

    c_callback = _ffi.wasmtime_func_unchecked_callback_t(callback)
    keep.append(c_callback)
    func = _ffi.wasmtime_func_t()
    _ffi.wasmtime_func_new_unchecked(store._context(), ty.ptr(), c_callback, None, _NO_FINALIZER,  # noqa: SLF001
                                     ctypes.byref(func))
    return wt.Func._from_raw(func)  # noqa: SLF001
