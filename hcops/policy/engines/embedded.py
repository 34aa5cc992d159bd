"""The embedded engine: Rego evaluated in-process by regopy (rego-cpp).

Fails closed: strict built-in errors are on; an evaluation error, an output that is not a result, or
a call to a built-in regopy does not implement (checked before evaluating, since regopy would
otherwise only notice when the call is reached) raises instead of yielding fewer findings.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import threading
from collections.abc import Mapping
from typing import Any

import regopy

from hcops.errors import Diagnostic, InvalidInput, Location
from hcops.policy.engines.base import (
    ENTRY_FILENAME,
    ENTRY_PACKAGE,
    ENTRY_RULE,
    Analysis,
    EngineResult,
    TestCase,
    TestResult,
    TestStatus,
    analyse,
    discover_tests,
    entry_module,
    parse_entry_result,
    run_test_cases,
    verdict_of_test,
)
from hcops.policy.engines.limits import EngineLimits, run_limited
from hcops.policy.regosrc import offset_to_position, rego_ref

try:  # the low-level API gives error details that regopy.Output hides
    from regopy import rego_shared as _rs
except ImportError:  # pragma: no cover - depends on the regopy build
    _rs = None

# Names that look like calls but are syntax, or keywords.
_NOT_BUILTINS = frozenset({"set", "not", "some", "every", "in", "if", "contains", "else", "with", "as"})

_ERROR_SEQ, _ERROR, _ERROR_MSG, _ERROR_CODE = 1804, 1800, 1801, 1803
_ERROR_START = re.compile(r"\(error\s")
_ERROR_HEAD = re.compile(r"\(error[ \t]+(\d+):")


class EmbeddedError(InvalidInput):
    """The embedded engine could not evaluate the policies; the gate must not pass."""


def _read_counted(text: str, pos: int) -> tuple[str, int]:
    """Read ``<n>:<n characters>`` at ``pos`` (rego-cpp's s-expression strings)."""
    colon = text.index(":", pos)
    n = int(text[pos:colon])
    return text[colon + 1 : colon + 1 + n], colon + 1 + n


def parse_sexpr_errors(text: str) -> list[tuple[str | None, int | None, str]]:
    """``(name, byte offset, message)`` of each ``(error ...)`` in a rego-cpp error dump."""
    starts = [m.start() for m in _ERROR_START.finditer(text)]
    out: list[tuple[str | None, int | None, str]] = []
    for i, start in enumerate(starts):
        segment = text[start : starts[i + 1] if i + 1 < len(starts) else len(text)]
        name: str | None = None
        offset: int | None = None
        head = _ERROR_HEAD.match(segment)
        if head:
            try:
                name, q = _read_counted(segment, head.end(1) - len(head.group(1)))
                if segment[q : q + 1] == "|":
                    offset = int(segment[q + 1 : segment.index("|", q + 1)])
            except ValueError:
                name, offset = None, None
        message = "error"
        at = segment.find("(errormsg")
        if at >= 0:
            with contextlib.suppress(ValueError):
                message = _read_counted(segment, at + len("(errormsg") + 1)[0].strip() or message
        out.append((name, offset, message))
    return out


def _node_errors(node: Any) -> list[tuple[str, str]]:
    """``(message, code)`` of each error below an ErrorSeq output node (low-level API)."""
    assert _rs is not None
    found: list[tuple[str, str]] = []

    def value(n: Any) -> str:
        try:
            return str(_rs.rego_node_value(n))
        except Exception:  # noqa: BLE001 - a node without a value
            return ""

    def walk(n: Any, depth: int) -> None:
        kind = int(_rs.rego.regoNodeType(n))
        if kind == _ERROR:
            msg, code = "", ""
            for i in range(_rs.rego_node_size(n)):
                child = _rs.rego_node_get(n, i)
                ck = int(_rs.rego.regoNodeType(child))
                if ck == _ERROR_MSG:
                    msg = value(child)
                elif ck == _ERROR_CODE:
                    code = value(child)
            found.append((msg or "evaluation error", code))
            return
        if depth > 3:
            return
        for i in range(_rs.rego_node_size(n)):
            walk(_rs.rego_node_get(n, i), depth + 1)

    walk(node, 0)
    return found


class EmbeddedEngine:
    """Evaluates with regopy; one interpreter and one query per evaluation, in a child process under
    time and memory limits (hcops.policy.engines.limits)."""

    name = "embedded"

    def __init__(self, limits: EngineLimits | None = None) -> None:
        self.limits = limits or EngineLimits()
        self._cancelled = threading.Event()

    def close(self) -> None:
        """Nothing is kept between evaluations."""

    def cancel(self) -> None:
        """Stop an evaluation under way in another thread (its caller gets an InvalidInput)."""
        self._cancelled.set()

    # ------------------------------------------------------------------ setup
    def _interpreter(self, modules: Mapping[str, str], data: Mapping[str, Any]) -> regopy.Interpreter:
        interp = regopy.Interpreter()
        interp.log_level = regopy.LogLevel.NONE  # rego-cpp would print errors to stdout
        interp.strict_built_in_errors = True
        diags: list[Diagnostic] = []
        for name in sorted(modules):
            try:
                interp.add_module(name, modules[name])
            except regopy.RegoError as exc:
                diags.extend(self._syntax_diagnostics(name, str(exc), modules))
        if diags:
            raise InvalidInput("policy syntax error", diags)
        if data:
            try:
                interp.add_data_json(json.dumps(data))
            except regopy.RegoError as exc:
                raise InvalidInput(f"policy data rejected by the embedded engine: {exc}") from exc
        return interp

    @staticmethod
    def _syntax_diagnostics(name: str, text: str, modules: Mapping[str, str]) -> list[Diagnostic]:
        errors = parse_sexpr_errors(text)
        if not errors:
            return [Diagnostic(f"cannot load module: {text.strip()[:300]}", location=Location(name, 1))]
        diags = []
        for ename, offset, message in errors:
            fname = ename if ename is not None and ename in modules else name
            loc = Location(fname, 1)
            if offset is not None:
                line, col = offset_to_position(modules[fname], offset)
                loc = Location(fname, line, col)
            diags.append(Diagnostic(message, location=loc))
        return diags

    @staticmethod
    def _check_builtins(interp: regopy.Interpreter, analysis: Analysis) -> None:
        defined: dict[str, set[str]] = {}
        for info in analysis.infos:
            defined.setdefault(info.package_name, set()).update(r.name for r in info.rules)
        diags: list[Diagnostic] = []
        for info in analysis.infos:
            aliases = {"data", "input"} | {imp.alias for imp in info.imports if imp.path[:1] in (("data",),)}
            local = defined.get(info.package_name, set())
            for call in info.calls:
                root = call.name.split(".", 1)[0]
                if root in aliases or root in local or call.name in _NOT_BUILTINS:
                    continue
                if not interp.is_builtin(call.name):
                    diags.append(Diagnostic(
                        f"{call.name}() is neither a function of the policies nor a built-in the "
                        "embedded engine (regopy) provides",
                        location=Location(info.filename, call.line, call.col),
                    ))
        if diags:
            raise EmbeddedError(
                "policies call built-ins the embedded engine cannot evaluate", diags,
                hint="rewrite the rule without them, or evaluate with an OPA server (--opa-url)",
            )

    @staticmethod
    def _set_input(interp: regopy.Interpreter, input: Any) -> None:
        # regopy.Input (built value by value) loads large documents about twice as fast as
        # set_input_term (which parses the JSON text as a Rego term).
        try:
            try:
                value = regopy.Input(input)
            except ValueError:  # not plain JSON types (dates, ...): normalise first
                value = regopy.Input(json.loads(json.dumps(input, default=str)))
            interp.set_input(value)
        except regopy.RegoError as exc:
            raise InvalidInput(f"policy input rejected by the embedded engine: {exc}") from exc

    # ------------------------------------------------------------------ query
    @staticmethod
    def _query(interp: regopy.Interpreter, query: str) -> tuple[bool, Any]:
        """``(defined, value of x)`` for a query binding ``x``; raises on any engine error."""
        if _rs is None:  # pragma: no cover - fallback to the public API
            try:
                out = interp.query(query)
            except json.JSONDecodeError as exc:
                raise EmbeddedError(f"embedded engine error evaluating `{query}`") from exc
            if not out.ok():
                raise EmbeddedError(f"embedded engine error evaluating `{query}`")
            if len(out) == 0 or "x" not in out[0].bindings:
                return False, None
            return True, out[0]["x"]

        impl = interp._impl  # noqa: SLF001 - regopy exposes no other handle
        try:
            out = _rs.rego_query(impl, query)
        except regopy.RegoError as exc:
            raise EmbeddedError(f"embedded engine rejected `{query}`: {exc}") from exc
        try:
            ok = bool(_rs.rego_output_ok(out))
            text = _rs.rego_output_string(out)
            errors = [] if ok else _node_errors(_rs.rego_output_node(out))
        finally:
            _rs.rego_free_output(out)
        if not ok:
            detail = "; ".join(f"{m} ({c})" if c else m for m, c in errors) or "unknown error"
            limit = any("statement count" in m for m, _ in errors)
            raise EmbeddedError(f"policy evaluation failed: {detail}",
                                [Diagnostic(f"{m} [{c}]" if c else m) for m, c in errors],
                                hint="the embedded engine stops at a fixed number of statements; evaluate large "
                                     "networks with an OPA server (--opa-url)" if limit else None)
        if text.strip() == "undefined":
            return False, None
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            found = parse_sexpr_errors(text)
            detail = "; ".join(m for _, _, m in found) or text.strip()[:300]
            raise EmbeddedError(f"policy evaluation failed: {detail}") from None
        results = parsed if isinstance(parsed, list) else [parsed]
        if not results:
            return False, None
        bindings = results[0].get("bindings", {}) if isinstance(results[0], dict) else {}
        if "x" not in bindings:
            return False, None
        return True, bindings["x"]

    # ------------------------------------------------------------------ Engine
    def evaluate(
        self, modules: Mapping[str, str], input: dict[str, Any], data: dict[str, Any]
    ) -> EngineResult:
        policy = {k: v for k, v in modules.items() if not k.endswith("_test.rego")}
        analysis = analyse(policy)
        policy[ENTRY_FILENAME] = entry_module(analysis)

        def work() -> Any:
            interp = self._interpreter(policy, data)
            self._check_builtins(interp, analysis)
            self._set_input(interp, input)
            defined, value = self._query(interp, f"x := data.{ENTRY_PACKAGE}.{ENTRY_RULE}")
            if not defined:
                raise EmbeddedError("policy evaluation returned no result")
            return value

        value = run_limited(work, self.limits, what="policy evaluation", classes={"EmbeddedError": EmbeddedError},
                            cancelled=self._cancelled)
        return parse_entry_result(self.name, analysis, value)

    def run_tests(self, modules: Mapping[str, str], data: dict[str, Any]) -> list[TestResult]:
        analysis = analyse(modules)
        cases = discover_tests(analysis)
        results: list[TestResult] = []
        # One child and one fresh interpreter per test package: regopy 1.5.2 crashes (SIGSEGV) after some
        # hundred test queries on one interpreter (the runtime pack's 98 tests in one child crash, any
        # package's alone pass). Each child's time limit grows with its number of tests (5 s each at least).
        for package in dict.fromkeys(c.segments for c in cases):
            batch = [c for c in cases if c.segments == package]
            results += self._run_batch(modules, data, analysis, batch)
        return results

    def _run_batch(self, modules: Mapping[str, str], data: dict[str, Any], analysis: Analysis,
                   batch: list[TestCase]) -> list[TestResult]:
        def work() -> list[dict[str, Any]]:
            interp = self._interpreter(modules, data)
            self._check_builtins(interp, analysis)

            def query(case: TestCase) -> tuple[TestStatus, str]:
                try:
                    defined, value = self._query(interp, f"x := {rego_ref(case.segments)}.{case.name}")
                except InvalidInput as exc:
                    return "error", exc.message
                return verdict_of_test(defined, value)

            return [dataclasses.asdict(r) for r in run_test_cases(batch, query)]

        limits = dataclasses.replace(self.limits, timeout_s=max(self.limits.timeout_s, 5.0 * len(batch)))
        done = run_limited(work, limits, what="the policy tests", classes={"EmbeddedError": EmbeddedError})
        return [TestResult(**r) for r in done]
