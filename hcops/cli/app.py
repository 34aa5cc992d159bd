"""The root command group, the options several command groups share, and the mapping of every outcome of a
command to its exit code (``run`` and ``main``): the one place where an ``HcopsError`` becomes an exit code.

The root group resolves the ``Settings`` from the environment once, before any command runs; commands take
them with ``pass_settings`` and hand them to the use cases, and the options that document a variable
(``--state-dir`` and ``HCOPS_STATE_DIR``, say) fall back to them (``SettingOption``): nothing below reads
the environment.

The command modules import from here, never the other way round; ``hcops.cli`` puts them together.
Everything heavy loads inside the commands: ``hcops --help`` or a JSON pipeline must not pay for it.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

from hcops import __version__, clock, output
from hcops.errors import ExitCode, HcopsError, InvalidInput
from hcops.policy.engines import ENGINES
from hcops.settings import ENGINE, Settings, shown

F = TypeVar("F", bound=Callable[..., Any])
Decorator = Callable[[Any], Any]

# The command's first argument: the settings the root group resolved.
pass_settings = click.make_pass_decorator(Settings)


def settings_of(ctx: click.Context) -> Settings:
    """The settings the root group resolved, for a group that calls its own handler."""
    settings = ctx.find_object(Settings)
    if settings is None:
        raise RuntimeError("no settings: hcops commands run under the root group (hcops.cli.cli)")
    return settings


class SettingOption(click.Option):
    """An option whose value, when the command line does not give it, is a field of the root group's
    ``Settings`` (the environment variable the option stands for) rather than one click reads itself: the
    variable is read and checked in one place, and the option's type still checks its value."""

    def __init__(self, *args: Any, setting: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.setting = setting

    def resolve_envvar_value(self, ctx: click.Context) -> str | None:
        settings = ctx.find_object(Settings)  # None only for a command invoked without the root group
        value = getattr(settings, self.setting) if settings is not None else None
        return None if value is None else str(value)


def setting_option(*param_decls: str, setting: str, **attrs: Any) -> Decorator:
    return click.option(*param_decls, cls=SettingOption, setting=setting, **attrs)


def options(*decorators: Decorator) -> Callable[[F], F]:
    """Several options as one decorator; ``--help`` lists them in the order given."""

    def apply(func: F) -> F:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


def spec_option_for(*, required: bool) -> Decorator:
    # Optional where a group takes it for its subcommands (`hcops audit -f SPEC verify`): the command
    # itself then insists (require_spec).
    return click.option("-f", "--file", "spec_file", required=required, metavar="SPEC",
                        type=click.Path(path_type=Path, dir_okay=False), help="Consortium spec (YAML).")


def state_option_for(contents: str) -> Decorator:
    """``--state-dir``, its help naming what this command keeps there."""
    return setting_option("--state-dir", setting="state_dir", type=click.Path(path_type=Path, file_okay=False),
                          default=None, help=f"State directory ({contents}). Default: .hcops/")


def output_option(*choices: str) -> Callable[[F], F]:
    return click.option("--output", "-o", "fmt", type=click.Choice(choices), default=choices[0],
                        show_default=True, help="Output format.")


spec_option = spec_option_for(required=True)
env_option = click.option("--env", "environment", metavar="ENV", default=None,
                          help="Merge environments/ENV.yaml (next to the spec) over the spec.")
state_option = state_option_for("keys, state, audit log")
audit_db_option = setting_option("--audit-db", setting="audit_db", type=click.Path(path_type=Path, dir_okay=False),
                                 default=None, help="Audit log file. Default: <state>/<network>/audit.db")
lock_timeout_option = click.option(
    "--lock-timeout", type=click.FloatRange(min=0), default=30.0, show_default=True,
    help="Seconds to wait for another apply/destroy of this network to finish.")
engine_option = setting_option(
    "--engine", setting="engine", type=click.Choice(ENGINES), default="auto", show_default=True,
    help="Policy engine: wasm (the pack compiled to WebAssembly, in-process), opa (the OPA binary, run by "
         "hcops), opa-managed (the OPA binary as a private server for the command), embedded (regopy); auto: "
         "wasm below 1 MB of input, else opa when installed (opa-managed when the spec's size says so "
         "ahead), else wasm for the built-in pack, else embedded.")


def timeout_option(default: float, help_text: str) -> Decorator:
    return click.option("--timeout", type=click.FloatRange(min=1), default=default, show_default=True,
                        help=help_text)


def require_spec(spec_file: Path | None) -> Path:
    if spec_file is None:
        raise InvalidInput("missing -f SPEC")
    return spec_file


GROUP_PARAMS = ("spec_file", "environment", "state_dir", "audit_db")


def with_group_params(ctx: click.Context, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The spec, state and log options given to the group count for its subcommand too: `hcops audit -f SPEC
    verify` as well as `hcops audit verify -f SPEC`."""
    group = ctx.parent.params if ctx.parent else {}
    for key in GROUP_PARAMS:
        if kwargs.get(key) is None:
            kwargs[key] = group.get(key)
    return kwargs


def _crash_log(exc: BaseException) -> tuple[Path | None, str]:
    """Save the traceback to a crash log: in the state folder, else in the temp folder. Returns the log's
    path, or None and why it could not be written. Never raises: a failure here must not put a
    traceback (of this very function) on the terminal in place of the short message."""
    stamp = clock.stamp(clock.now())
    problems: list[str] = []
    try:
        text = "".join(traceback.format_exception(exc))
    except Exception as inner:  # e.g. an exception whose __str__ fails
        text = f"{exc.__class__.__name__} (traceback unavailable: {inner.__class__.__name__})\n"
    for folder in _crash_folders():
        path = folder / f"crash-{stamp}-{os.getpid()}.log"
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            # O_EXCL and O_NOFOLLOW: a planted link or file is never written through; 0600, as the state
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as fh:
                fh.write(text)
            return path, ""
        except Exception as inner:
            where = getattr(inner, "filename", None) or path
            problems.append(f"{where}: {getattr(inner, 'strerror', None) or inner.__class__.__name__}")
    return None, "; ".join(problems) or "no folder to write it to"


def _crash_folders() -> list[Path]:
    ctx = click.get_current_context(silent=True)
    settings = ctx.find_object(Settings) if ctx is not None else None
    state = (settings or Settings()).state_root()
    try:
        temp = tempfile.gettempdir()
    except Exception:  # no usable temp folder at all (gettempdir raises then)
        return [state]
    return [state, Path(temp)]


@contextlib.contextmanager
def exit_codes() -> Iterator[None]:
    """Every failure inside becomes its exit code (a SystemExit), with a short message."""
    try:
        yield
    except InvalidInput as exc:
        if exc.diagnostics:
            output.diagnostics(exc.diagnostics)
            n = sum(1 for d in exc.diagnostics if d.severity == "error")
            output.text(f"{n} error(s): {exc.message}" if exc.message else f"{n} error(s)", err=True)
            if exc.hint:
                output.text(f"hint: {exc.hint}", err=True)
        else:
            output.error(exc.message, exc.hint)
        raise SystemExit(exc.exit_code) from None
    except HcopsError as exc:
        output.error(exc.message, exc.hint)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        output.error("interrupted")
        raise SystemExit(130) from None
    except Exception as exc:  # the boundary for unexpected failures: short message + where details went
        log, why = _crash_log(exc)
        saved = f"details written to {log}" if log else f"the details could not be saved ({why})"
        try:
            message = f"internal error: {exc.__class__.__name__}: {exc}"
        except Exception:  # an exception whose __str__ fails must not escape as a traceback either
            message = f"internal error: {exc.__class__.__name__}"
        output.error(message, f"{saved}; please report it")
        raise SystemExit(ExitCode.INTERNAL) from None


def run(func: Callable[..., int | None]) -> Callable[..., int | None]:
    """Map every outcome of a command to its exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> int | None:
        with exit_codes():
            code = func(*args, **kwargs)
        raise SystemExit(code or 0)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="hcops")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """hcops: compliance-as-code for healthcare blockchain consortia.

    Describe the consortium in one spec; validate it, render manifests, gate releases on HIPAA
    policies, run the validators and audit them.
    """
    # Before the subcommand parses its options: they fall back to these settings (SettingOption).
    with exit_codes():
        ctx.obj = load_settings(os.environ)


def load_settings(environ: Mapping[str, str]) -> Settings:
    """``Settings.from_env``, and the engine's name checked here: the engines are a layer above settings."""
    settings = Settings.from_env(environ)
    if settings.engine is not None and settings.engine not in ENGINES:
        raise InvalidInput(f"{ENGINE}: expected one of {', '.join(ENGINES)}, got {shown(settings.engine)}",
                           hint=f"set {ENGINE} to one of them, or unset it")
    return settings


@cli.command()
@output_option("text", "json")
@run
def version(fmt: str) -> int:
    """Print the hcops version."""
    if fmt == "json":
        output.as_json({"version": __version__, "python": sys.version.split()[0]})
    else:
        output.text(f"hcops {__version__}")
    return 0


def main(argv: list[str] | None = None) -> None:
    # hcops uses no pydantic plugins; looking for them reads the entry points of every installed
    # distribution, a noticeable share of a gate's start-up. Set the variable to "" to load them anyway.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    try:
        _main(argv)
    finally:
        if argv is None:
            # The program ends here (not a caller that goes on). The interpreter's last cyclic collection
            # would walk everything still alive, after a 1,000-node gate (input document, plan, report) a
            # noticeable share of its run, to free memory the process is about to return anyway. Frozen
            # objects are left out of it. Nothing depends on it: files and connections are closed by
            # context managers before this point, and exit handlers still run.
            gc.freeze()


def _main(argv: list[str] | None) -> None:
    try:
        cli.main(args=argv, prog_name="hcops", standalone_mode=False)
    except click.exceptions.UsageError as exc:
        exc.show()
        raise SystemExit(ExitCode.INVALID_INPUT) from None
    except click.exceptions.Abort:
        output.error("aborted")
        raise SystemExit(130) from None
    except click.exceptions.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except click.exceptions.ClickException as exc:
        exc.show()
        raise SystemExit(ExitCode.INVALID_INPUT) from None
