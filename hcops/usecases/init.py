"""Use case `init`: scaffold a new consortium folder (spec, environment overlays, attestations template,
.gitignore, CI gate workflow) from a few choices. The files come from ``templates/init/*.j2``; the spec is
validated in the development environment before anything is written, so what `init` writes validates."""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hcops import __version__
from hcops.errors import Diagnostic, InvalidInput
from hcops.settings import Settings
from hcops.spec.models import OrgRole

COMETBFT_VERSION = "0.38.17"
IMAGE = f"hcops/cometbft:{COMETBFT_VERSION}"
PROVIDERS = ("docker", "kubernetes")
DEFAULT_ORGS = 4  # with one validator each: the smallest set the consensus checks accept beyond dev
DEFAULT_ROLE = OrgRole.provider
MAX_ORGS = 100
MAX_VALIDATORS_PER_ORG = 50
ENVIRONMENTS = ("dev", "staging", "prod")

# template (in templates/init) -> file written, relative to the folder
FILES = {
    "network.yaml.j2": "network.yaml",
    "dev.yaml.j2": "environments/dev.yaml",
    "staging.yaml.j2": "environments/staging.yaml",
    "prod.yaml.j2": "environments/prod.yaml",
    "attestations.yaml.j2": "attestations.yaml",
    "gitignore.j2": ".gitignore",
    "hcops-gate.yml.j2": ".github/workflows/hcops-gate.yml",
}

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_NOT_LABEL = re.compile(r"[^a-z0-9-]+")
_LABEL_RULE = 'a DNS-1123 label: lowercase letters, digits and "-", starting and ending with a letter or digit, ' \
              "at most 63 characters"


@dataclass(frozen=True)
class Org:
    name: str
    role: str = DEFAULT_ROLE.value


@dataclass(frozen=True)
class InitOptions:
    name: str
    orgs: tuple[Org, ...]
    validators_per_org: int = 1
    provider: str = "docker"
    force: bool = False


@dataclass(frozen=True)
class InitResult:
    directory: Path
    files: tuple[Path, ...]
    overwritten: tuple[Path, ...]
    # environments other than dev whose spec does not validate yet, with the first problem of each
    pending: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()  # what the gate will say about these choices


def gate_notes(options: InitOptions) -> tuple[str, ...]:
    """Equal voting power per organization: with fewer than 4, each holds at least 1/3, which the gate denies in
    every environment (one organization could then halt the chain)."""
    n = len(options.orgs)
    if n >= 4:
        return ()
    return (f"with {n} organization(s) of equal voting power each holds at least 1/3 of it: the gate denies that in "
            "every environment (HC-CP1-POWER-CONCENTRATION); add organizations (at least 4) before running it",)


def check_label(what: str, value: str) -> str:
    if len(value) > 63 or not _LABEL.fullmatch(value):
        raise InvalidInput(f"{what} {value!r} is not {_LABEL_RULE}")
    return value


def default_name(directory: Path) -> str:
    """The folder's name as a DNS-1123 label (``Regional Health`` -> ``regional-health``), else ``consortium``."""
    label = _NOT_LABEL.sub("-", directory.resolve().name.lower()).strip("-")[:63].rstrip("-")
    return label or "consortium"


def parse_org(text: str) -> Org:
    """``NAME`` or ``NAME:ROLE`` (role: provider, payer, pharmacy, laboratory, regulator, research)."""
    name, _, role = text.partition(":")
    check_label("organization name", name)
    if not role:
        return Org(name)
    roles = [r.value for r in OrgRole]
    if role not in roles:
        raise InvalidInput(f"organization {name}: role {role!r} is not one of {', '.join(roles)}")
    return Org(name, role)


def make_options(name: str, orgs: Sequence[str] = (), org_count: int | None = None, validators_per_org: int = 1,
                 provider: str = "docker", force: bool = False) -> InitOptions:
    """Options from the command's choices: named organizations (``NAME[:ROLE]``) or a count of them."""
    check_label("consortium name", name)
    if orgs and org_count is not None:
        raise InvalidInput("give the organizations by name (--org, repeatable) or by count (--orgs), not both")
    if org_count is not None and not 1 <= org_count <= MAX_ORGS:
        raise InvalidInput(f"--orgs expects 1 to {MAX_ORGS} organizations, got {org_count}")
    count = org_count or DEFAULT_ORGS
    parsed = tuple(parse_org(o) for o in orgs) or tuple(Org(f"org-{i}") for i in range(1, count + 1))
    if len(parsed) > MAX_ORGS:
        raise InvalidInput(f"at most {MAX_ORGS} organizations, got {len(parsed)}")
    seen: set[str] = set()
    for o in parsed:
        if o.name in seen:
            raise InvalidInput(f"organization {o.name!r} is named twice")
        seen.add(o.name)
    if not 1 <= validators_per_org <= MAX_VALIDATORS_PER_ORG:
        raise InvalidInput(f"--validators-per-org expects 1 to {MAX_VALIDATORS_PER_ORG}, got {validators_per_org}")
    if provider not in PROVIDERS:
        raise InvalidInput(f"--provider expects one of {', '.join(PROVIDERS)}, got {provider!r}")
    for o in parsed:  # the node names derive from the organization's: they must be labels too
        check_label(f"node name of organization {o.name}", _node(o.name, validators_per_org - 1))
    return InitOptions(name, parsed, validators_per_org, provider, force)


def _node(org: str, i: int) -> str:
    return f"{org}-val-{i}"


def _chain_id(name: str, suffix: str) -> str:
    return name[:50 - len(suffix)].rstrip("-") + suffix  # chain ids: at most 50 characters


def render_files(options: InitOptions, settings: Settings | None = None) -> dict[str, str]:
    """Relative path -> content of every file `init` writes."""
    from hcops.render.base import templates_dir
    from hcops.render.templating import load_template

    orgs = [{"name": o.name, "role": o.role, "nodes": [_node(o.name, i) for i in range(options.validators_per_org)]}
            for o in options.orgs]
    context = {"name": options.name, "organizations": orgs, "first_org": options.orgs[0].name,
               "provider": options.provider, "cometbft_version": COMETBFT_VERSION, "image": IMAGE,
               "chain_id": _chain_id(options.name, "-1"), "staging_chain_id": _chain_id(options.name, "-staging-1"),
               "hcops_version": __version__}
    folder = templates_dir(settings) / "init"
    return {path: load_template(folder, template).render(context) for template, path in FILES.items()}


def _existing(directory: Path, paths: Sequence[str]) -> list[Path]:
    from hcops.fsutil import existing_file, lexists

    found = []
    for rel in paths:
        path = directory / rel
        if lexists(path):
            existing_file(path)  # a folder or a link where a file goes is refused, --force or not
            found.append(path)
    return found


def _validate(files: dict[str, str], directory: Path) -> tuple[tuple[str, str], ...]:
    """Validate the scaffold before writing it: dev must validate (else InvalidInput); the other environments'
    first problems are returned (fewer than 4 validators is an error outside development, for instance)."""
    from hcops.spec.loader import load_spec

    pending: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="hcops-init-") as tmp:
        for rel, content in files.items():
            path = Path(tmp, rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
        for env in ENVIRONMENTS:
            try:
                load_spec(Path(tmp, "network.yaml"), env)
            except InvalidInput as exc:
                diags = [_moved(d, tmp, directory) for d in exc.diagnostics if d.severity == "error"]
                if env == "dev":
                    raise InvalidInput("the consortium these options describe does not validate", diags,
                                       hint="choose other names or counts") from None
                pending.append((env, diags[0].message if diags else exc.message))
    return tuple(pending)


def _moved(d: Diagnostic, tmp: str, directory: Path) -> Diagnostic:
    if d.location is None or not d.location.file.startswith(tmp):
        return d
    where = str(directory / os.path.relpath(d.location.file, tmp))
    return dataclasses.replace(d, location=dataclasses.replace(d.location, file=where))


def init(directory: Path, options: InitOptions, settings: Settings | None = None) -> InitResult:
    """Write the scaffold into ``directory`` (created if needed). Existing files are refused (InvalidInput,
    naming them) unless ``options.force``; nothing is written when anything is refused or invalid."""
    from hcops.fsutil import make_dirs, replace_file

    files = render_files(options, settings)
    existing = _existing(directory, list(files))
    if existing and not options.force:
        names = ", ".join(str(p) for p in existing)
        raise InvalidInput(f"refusing to overwrite {len(existing)} existing file(s): {names}",
                           hint="pass --force to overwrite them, or choose another folder")
    pending = _validate(files, directory)
    written = []
    for rel, content in files.items():
        path = directory / rel
        make_dirs(path.parent, private=False)
        replace_file(str(path), content.encode("utf-8"), 0o644)
        written.append(path)
    return InitResult(directory, tuple(written), tuple(existing), pending, gate_notes(options))
