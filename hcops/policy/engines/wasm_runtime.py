"""An OPA policy compiled to WebAssembly (``opa build -t wasm``), run in-process by wasmtime.

The OPA Wasm ABI (1.2+): the module imports its linear memory, ``opa_abort`` and ``opa_builtin0..4``
(the built-in functions the Wasm target does not implement itself, numbered by the ``builtins()``
export); it exports ``opa_eval`` (one call: parse the input JSON, evaluate an entrypoint, return the
result as JSON), ``opa_malloc``/``opa_json_parse``/``opa_value_dump`` and the heap pointer.

Fast and bounded:
- compiling the module (Cranelift) takes about a second; the compiled code is kept in
  ``$HCOPS_CACHE/wasm/`` (keyed by the module's digest, the wasmtime version and the configuration)
  and mapped from there on later runs;
- calls into the module go through ``wasmtime_func_call_unchecked`` where the wasmtime package exposes
  it (the public ``Func.__call__`` builds a FuncType per call, ten times the cost of the call itself:
  a gate makes thousands of them for ``sprintf``), else through the public API;
- the memory is capped at ``limits.memory_mb`` and an evaluation is interrupted at ``limits.timeout_s``
  (epoch interruption) or when ``cancel`` is called from another thread.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import struct
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
import wasmtime as wt

from hcops.errors import EnvironmentProblem, InvalidInput
from hcops.policy.engines.limits import EngineLimitExceeded, EngineLimits
from hcops.policy.engines.wasm_builtins import HOST_BUILTINS, BuiltinError, Num, parse_value_dump
from hcops.policy.engines.wasm_calls import Call, host_func
from hcops.settings import Settings, resolve

PAGE = 65536
MAX_PAGES = 65536  # wasm32: 4 GiB
_STRING, _NUMBER, _ARRAY, _NULL, _STRING_INTERNED = 4, 3, 5, 1, 8
_NUMBER_TEXT = 2  # opa_number_t.repr of a number kept as its text (what the JSON parser makes)
_SLOW: Any = object()


def _read_safe(view: memoryview, addr: int) -> Any:
    try:
        return _read(view, addr, 0)
    except (IndexError, struct.error, UnicodeDecodeError, ValueError):
        return _SLOW  # not laid out as expected: the exact (slower) path


def _read(view: memoryview, addr: int, depth: int) -> Any:
    """A value of the module's memory, for the layouts of OPA's wasm/src/value.h (wasm32)."""
    kind = view[addr]
    if kind in (_STRING, _STRING_INTERNED):  # {type, free, len@4, ptr@8}
        length, ptr = struct.unpack_from("<II", view, addr + 4)
        return bytes(view[ptr : ptr + length]).decode("utf-8")
    if kind == _NUMBER and view[addr + 1] == _NUMBER_TEXT:  # {type, repr, {ptr@8, len@12}}
        ptr, length = struct.unpack_from("<II", view, addr + 8)
        return Num(bytes(view[ptr : ptr + length]).decode("ascii"))
    if kind == _NULL:
        return None
    if kind == _ARRAY and depth == 0:  # {type, elems@4, len@8}; elems: {index, value}
        elems, length = struct.unpack_from("<II", view, addr + 4)
        out = []
        for i in range(length):
            item = _read(view, struct.unpack_from("<I", view, elems + 8 * i + 4)[0], 1)
            if item is _SLOW:
                return _SLOW
            out.append(item)
        return out
    return _SLOW


class WasmAbort(InvalidInput):
    """The policy module stopped the evaluation (a Rego runtime error such as conflicting values)."""


def cache_dir(settings: Settings | None = None) -> Path:
    return resolve(settings).cache / "wasm"


def _engine() -> wt.Engine:
    cfg = wt.Config()
    cfg.epoch_interruption = True
    return wt.Engine(cfg)


_ENGINE: wt.Engine | None = None
_ENGINE_LOCK = threading.Lock()
_CONFIG_KEY = "epoch1"  # bump when _engine() changes: the compiled code depends on it


def shared_engine() -> wt.Engine:
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            _ENGINE = _engine()
        return _ENGINE


def load_module(wasm: bytes, settings: Settings | None = None) -> wt.Module:
    """The compiled module for ``wasm``: from the cache when there, else compiled (and cached)."""
    engine = shared_engine()
    version = _runtime_stamp()
    key = hashlib.sha256(wasm).hexdigest()[:32]
    cached = cache_dir(settings) / f"{key}-{version}-{_CONFIG_KEY}.cwasm"
    if cached.is_file():
        try:
            return wt.Module.deserialize_file(engine, str(cached))
        except wt.WasmtimeError:
            pass  # written by another wasmtime build: compile again
    try:
        module = wt.Module(engine, wasm)
    except wt.WasmtimeError as exc:
        raise InvalidInput(f"the compiled policy module is not valid WebAssembly: {exc}") from exc
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cached.parent, prefix=".cwasm-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(module.serialize())
        os.replace(tmp, cached)
    except OSError:
        pass  # an unwritable cache only costs the compile next time
    return module


def _runtime_stamp() -> str:
    """Which wasmtime build compiled the code (a compiled module only loads into the same build; one
    that does not is compiled again)."""
    try:
        return format(Path(wt.__file__).parent.stat().st_mtime_ns, "x")
    except (OSError, TypeError):  # pragma: no cover
        return "unknown"


class OpaWasm:
    """One instance of a compiled policy; ``evaluate`` may be called repeatedly (not concurrently)."""

    def __init__(self, module: wt.Module, limits: EngineLimits | None = None, *, size: int = 0) -> None:
        """``size``: the module's size in bytes (its data segments, which need memory, are smaller)."""
        self.limits = limits or EngineLimits()
        self._store = wt.Store(shared_engine())
        wanted = next((imp.type for imp in module.imports if imp.name == "memory"), None)
        least = max(wanted.limits.min if isinstance(wanted, wt.MemoryType) else 2, 5, size // PAGE + 2)
        pages = max(least, min(MAX_PAGES, self.limits.memory_mb * (1 << 20) // PAGE))
        self._memory = wt.Memory(self._store, wt.MemoryType(wt.Limits(least, pages)))
        self._builtins: dict[int, Callable[..., Any]] = {}
        self._keep: list[Any] = []  # the host callbacks must outlive the instance
        imports: list[Any] = []
        for imp in module.imports:
            ty = imp.type
            if imp.name == "memory":
                imports.append(self._memory)
            elif imp.name == "opa_abort" and isinstance(ty, wt.FuncType):
                imports.append(host_func(self._store, ty, self._abort, self._keep))
            elif imp.name and imp.name.startswith("opa_builtin") and isinstance(ty, wt.FuncType):
                imports.append(host_func(self._store, ty, self._builtin, self._keep))
            elif imp.name == "opa_println" and isinstance(ty, wt.FuncType):
                imports.append(host_func(self._store, ty, lambda _addr: None, self._keep))
            else:
                raise InvalidInput(f"the policy module imports {imp.module}.{imp.name}, which hcops does not provide")
        self._store.set_epoch_deadline(1 << 62)
        self._instance = wt.Instance(self._store, module, imports)
        ex = self._instance.exports(self._store)

        def call(name: str) -> Call:
            f = ex[name]
            assert isinstance(f, wt.Func)
            return Call(self._store, f)

        self._malloc = call("opa_malloc")
        self._json_parse = call("opa_json_parse")
        self._value_dump = call("opa_value_dump")
        self._json_dump = call("opa_json_dump")
        self._heap_get = call("opa_heap_ptr_get")
        self._heap_set = call("opa_heap_ptr_set")
        self._eval = call("opa_eval")
        self.builtins = self._dump_json(call("builtins")())
        self.entrypoints: dict[str, int] = self._dump_json(call("entrypoints")())
        missing = sorted(name for name in self.builtins if name not in HOST_BUILTINS)
        if missing:
            raise EnvironmentProblem(
                "the policies call built-ins that neither the Wasm target nor hcops provide: " + ", ".join(missing),
                hint="evaluate them with the OPA binary (--engine opa)")
        self._builtins = {int(i): HOST_BUILTINS[name] for name, i in self.builtins.items()}
        self._scratch = 0
        self._scratch_size = 0
        self._view_size = -1
        self._view_mem = memoryview(b"")
        self._layout_ok = True
        self._layout_ok = self._check_layout()
        self._heap0 = self._heap_get()

    def _check_layout(self) -> bool:
        """Whether values are laid out as ``_read`` expects (checked on a known value; else every
        argument goes through ``opa_value_dump``)."""
        try:
            value = self._load('["ab", 12, null, "\u00e9"]'.encode())
            return _read_safe(self._view(), value) == ["ab", Num("12"), None, "\u00e9"]
        except Exception:  # noqa: BLE001 - any surprise: the slow, exact path
            return False

    # ------------------------------------------------------------------ memory
    def _base(self) -> int:
        return ctypes.cast(self._memory.data_ptr(self._store), ctypes.c_void_p).value or 0

    def _cstring(self, addr: int) -> bytes:
        size = self._memory.data_len(self._store)
        if not 0 <= addr < size:
            raise InvalidInput("the policy module returned an address outside its memory")
        return ctypes.string_at(self._base() + addr)

    def _dump_json(self, addr: int) -> Any:
        return json.loads(self._cstring(self._json_dump(addr)))

    def _write(self, data: bytes, at: int) -> None:
        short = at + len(data) - self._memory.data_len(self._store)
        if short > 0:
            try:
                self._memory.grow(self._store, (short + PAGE - 1) // PAGE)
            except wt.WasmtimeError as exc:
                raise EngineLimitExceeded(
                    f"the policy input does not fit the wasm engine's memory limit of {self.limits.memory_mb} MB",
                    hint="raise the limit (--engine-memory)") from exc
        ctypes.memmove(self._base() + at, data, len(data))

    def _load(self, data: bytes) -> int:
        addr = self._malloc(len(data))
        self._write(data, addr)
        value = self._json_parse(addr, len(data))
        if value == 0:
            raise InvalidInput("the wasm engine could not read a JSON document")
        return value

    # ------------------------------------------------------------------ imports
    def _abort(self, addr: int) -> None:
        try:
            message = self._cstring(addr).decode("utf-8", "replace")
        except InvalidInput:
            message = "abort"
        if "malloc" in message:  # the memory cannot grow any further
            raise EngineLimitExceeded(
                f"policy evaluation exceeded the wasm engine's memory limit of {self.limits.memory_mb} MB",
                hint="a policy asks for too much memory; simplify it, or raise the limit (--engine-memory)")
        raise WasmAbort(f"policy evaluation failed: {message}")

    def _builtin(self, builtin_id: int, _ctx: int, *args: int) -> int:
        fn = self._builtins.get(builtin_id)
        if fn is None:
            raise WasmAbort(f"policy evaluation failed: unknown built-in #{builtin_id}")
        values = []
        for addr in args:
            value = _read_safe(self._view(), addr) if self._layout_ok else _SLOW
            if value is _SLOW:  # calls into the module, which may grow the memory: _view() notices
                value = parse_value_dump(self._cstring(self._value_dump(addr)))
            values.append(value)
        try:
            result = fn(*values)
        except BuiltinError as exc:  # strict built-in errors, as the other engines
            raise WasmAbort(f"policy evaluation failed: {exc}") from None
        text = orjson.dumps(result)
        if len(text) > self._scratch_size:  # the parser copies what it reads: one buffer serves every call
            self._scratch_size = max(len(text), 4096)
            self._scratch = self._malloc(self._scratch_size)
        self._view()[self._scratch : self._scratch + len(text)] = text
        value = self._json_parse(self._scratch, len(text))
        if value == 0:
            raise WasmAbort("policy evaluation failed: a built-in's result could not be read back")
        return value

    def _view(self) -> memoryview:
        """The module's memory; valid until it grows (which moves it only then: the size tells)."""
        size = self._memory.data_len(self._store)
        if size != self._view_size:
            self._view_mem = memoryview((ctypes.c_ubyte * size).from_address(self._base())).cast("B")
            self._view_size = size
        return self._view_mem

    def _value(self, addr: int) -> Any:
        """The value at ``addr``: read in place when it is a string, a number kept as text, null or an
        array of those (``sprintf``'s arguments, nearly always), else through ``opa_value_dump``."""
        value = _read_safe(self._view(), addr) if self._layout_ok else _SLOW
        if value is _SLOW:
            value = parse_value_dump(self._cstring(self._value_dump(addr)))
        return value

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, entrypoint: str, input_json: bytes, data_json: bytes = b"{}") -> tuple[bool, Any]:
        """``(defined, value)`` of ``entrypoint`` for the input document (JSON bytes)."""
        if entrypoint not in self.entrypoints:
            raise InvalidInput(f"the policy module has no entrypoint {entrypoint}")
        engine = shared_engine()
        timer = threading.Timer(self.limits.timeout_s, engine.increment_epoch)
        timer.daemon = True
        self._store.set_epoch_deadline(1)
        timer.start()
        try:
            self._heap_set(self._heap0)
            self._scratch = self._scratch_size = 0
            data = self._load(data_json)
            base = self._heap_get()
            if input_json:  # none: input is undefined
                self._write(input_json, base)
            result = self._eval(0, self.entrypoints[entrypoint], data, base, len(input_json),
                                base + len(input_json), 0)
            text = self._cstring(result)
        except wt.Trap as exc:
            raise self._trap(exc) from None
        except wt.WasmtimeError as exc:
            raise InvalidInput(f"the wasm engine failed: {str(exc).splitlines()[0][:300]}") from None
        finally:
            timer.cancel()
            self._store.set_epoch_deadline(1 << 62)
        results = json.loads(text)
        if not isinstance(results, list) or not results:
            return False, None
        first = results[0]
        if not isinstance(first, Mapping) or "result" not in first:
            return False, None
        return True, first["result"]

    def _trap(self, exc: wt.Trap) -> InvalidInput:
        code = getattr(exc, "trap_code", None)
        text = str(exc)
        if code == wt.TrapCode.INTERRUPT or "interrupt" in text:
            return EngineLimitExceeded(
                f"policy evaluation exceeded the wasm engine's time limit of {self.limits.timeout_s:g} s "
                "(or was cancelled)",
                hint="a policy asks for too much work; simplify it, or raise the limit (--engine-timeout)")
        if "unreachable" in text or code == wt.TrapCode.UNREACHABLE:
            # opa_malloc traps when the memory cannot grow any further
            return EngineLimitExceeded(
                f"policy evaluation stopped, most likely at the wasm engine's memory limit of "
                f"{self.limits.memory_mb} MB", hint="raise the limit (--engine-memory)")
        return InvalidInput(f"policy evaluation failed in the wasm engine: {text.splitlines()[0][:300]}")

    def interrupt(self) -> None:
        """Stop an evaluation under way (from another thread: only the engine's epoch is touched, the
        store belongs to the evaluating thread). Every evaluation on the shared engine stops with it."""
        shared_engine().increment_epoch()
