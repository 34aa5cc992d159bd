"""The one error hierarchy. Only ``hcops.cli`` catches ``HcopsError`` and turns it into an exit code."""

from __future__ import annotations

from dataclasses import dataclass


class ExitCode:
    OK = 0
    CHECK_FAILED = 1
    INVALID_INPUT = 2
    INTERNAL = 3


@dataclass(frozen=True)
class Location:
    """A place in a source file; line and column are 1-based."""

    file: str
    line: int
    column: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Diagnostic:
    """One user-facing problem: where it is, which field, what was expected."""

    message: str
    path: str = ""
    location: Location | None = None
    severity: str = "error"  # error | warning

    def format(self) -> str:
        where = f"{self.location}: " if self.location else ""
        field = f"{self.path}: " if self.path else ""
        return f"{where}{self.severity}: {field}{self.message}"


class HcopsError(Exception):
    """Base of every error a user can cause or act on; carries its exit code."""

    exit_code: int = ExitCode.INVALID_INPUT

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class InvalidInput(HcopsError):
    """Bad input: spec, overlay, flags, files. Exit 2."""

    def __init__(self, message: str, diagnostics: list[Diagnostic] | None = None, *,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.diagnostics = list(diagnostics or [])


class CheckFailed(HcopsError):
    """A gate or audit check found problems. Exit 1."""

    exit_code = ExitCode.CHECK_FAILED


class EnvironmentProblem(HcopsError):
    """The machine is not ready (engine down, socket denied, port taken, missing image). Exit 2."""


class InternalError(HcopsError):
    """Unexpected failure. Exit 3."""

    exit_code = ExitCode.INTERNAL
