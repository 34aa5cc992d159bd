"""The built-in packs compiled to WebAssembly, shipped with hcops, and compiling other policies.

``hcops/policy/engines/wasm/`` holds ``gate.wasm`` (policies/ without runtime/ and tests) and
``runtime.wasm`` (policies/runtime/), each compiled by ``opa build -t wasm`` from the generated entry
module (hcops.policy.engines.base), and ``manifest.json``: per pack the digest of the policy sources it
was compiled from (``policy_digest``: the sources, entry module included, independent of file names),
its entrypoint, the built-ins the host must provide, the OPA version and the module's SHA-256.

The wasm engine uses a shipped module only when the digest of the modules it is asked to evaluate
matches; other policies (``--policy`` directories, a pack under ``HCOPS_POLICY_DIR``, a pack being
edited) are compiled at run time with the OPA binary into ``$HCOPS_CACHE/wasm/`` (keyed by digest).

Regenerate after editing policies/ (tests/policy/test_engine_wasm.py fails while it is stale)::

    python -m hcops.policy.engines.wasm_pack
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hcops.errors import Diagnostic, EnvironmentProblem, InvalidInput, Location
from hcops.policy.engines.base import ENTRY_FILENAME, ENTRY_PACKAGE, ENTRY_RULE, Analysis, analyse, entry_module
from hcops.policy.engines.opa_binary import find_opa
from hcops.settings import Settings

ARTIFACTS = Path(__file__).resolve().parent / "wasm"
MANIFEST = ARTIFACTS / "manifest.json"
ENTRYPOINT = f"{ENTRY_PACKAGE}/{ENTRY_RULE}"
PARTS = 2  # the packages in two halves, evaluated at once on two threads (two cores)
PARTS_FILENAME = "__hcops_engine_parts__.rego"
PART_ENTRYPOINTS = tuple(f"{ENTRY_PACKAGE}/parts/part{i}" for i in range(PARTS))
REGENERATE = "python -m hcops.policy.engines.wasm_pack"
_BUILD_ERROR = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<code>rego_\w+): (?P<msg>.*)$")


def policy_digest(policy: Mapping[str, str]) -> str:
    """SHA-256 over the sources of ``policy`` (as given: an evaluation's has no tests and the entry module),
    sorted, whatever the files' names."""
    h = hashlib.sha256()
    for source in sorted(policy.values()):
        h.update(hashlib.sha256(source.encode("utf-8")).hexdigest().encode())
        h.update(b"\n")
    return h.hexdigest()


def with_entry(modules: Mapping[str, str]) -> dict[str, str]:
    """The modules an evaluation compiles: no tests, plus the entry module and its halves (parts_module)."""
    policy = {k: v for k, v in modules.items() if not k.endswith("_test.rego")}
    analysis = analyse(policy)
    policy[ENTRY_FILENAME] = entry_module(analysis)
    policy[PARTS_FILENAME] = parts_module(analysis, policy)
    return policy


def parts_module(analysis: Analysis, policy: Mapping[str, str]) -> str:
    """``package hcops_engine_entry.parts`` with ``part0``..: the entry module's ``result`` split into
    PARTS objects of whole packages (their union is ``result``), balanced by the size of the packages'
    sources, so that the halves can be evaluated at the same time."""
    weight = {name: 0 for name in analysis.packages}
    for info in analysis.infos:
        if info.package_name in weight:
            weight[info.package_name] += len(policy.get(info.filename, ""))
    parts: list[list[str]] = [[] for _ in range(PARTS)]
    load = [0] * PARTS
    for name in sorted(weight, key=lambda n: (-weight[n], n)):
        i = load.index(min(load))
        parts[i].append(name)
        load[i] += weight[name] or 1
    lines = [f"package {ENTRY_PACKAGE}.parts", ""]
    for i, names in enumerate(parts):
        body = entry_module(Analysis(analysis.infos, {n: analysis.packages[n] for n in sorted(names)}))
        lines += [f"part{i} := {{", *(ln for ln in body.splitlines() if ln.startswith("\t")), "}", ""]
    return "\n".join(lines)


@dataclass(frozen=True)
class Compiled:
    wasm: bytes
    digest: str
    entrypoints: tuple[str, ...]
    source: str  # "shipped" or "compiled"


def shipped_manifest() -> dict[str, Any]:
    try:
        doc = json.loads(MANIFEST.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def find_shipped(digest: str) -> Compiled | None:
    for entry in (shipped_manifest().get("packs") or {}).values():
        if isinstance(entry, Mapping) and entry.get("digest") == digest:
            try:
                wasm = (ARTIFACTS / str(entry["module"])).read_bytes()
            except (OSError, KeyError):
                return None
            if hashlib.sha256(wasm).hexdigest() != entry.get("sha256"):
                return None  # damaged: compile instead
            return Compiled(wasm, digest, tuple(entry.get("entrypoints") or (ENTRYPOINT,)), "shipped")
    return None


def compile_wasm(policy: Mapping[str, str], entrypoints: tuple[str, ...] = (ENTRYPOINT,),
                 opa: Path | None = None, timeout: float = 300.0, settings: Settings | None = None) -> bytes:
    """``opa build -t wasm`` of ``policy`` (name -> source); the module's bytes."""
    binary = opa or find_opa(settings)
    if binary is None:
        raise EnvironmentProblem(
            "these policies are not in the precompiled wasm pack, and compiling them needs the OPA binary",
            hint="install it (scripts/bootstrap opa), or choose another engine (--engine embedded)")
    import subprocess
    import tarfile
    import tempfile

    from hcops.policy.engines.opa_local import write_modules

    with tempfile.TemporaryDirectory(prefix="hcops-wasm-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        names = write_modules(src, policy)
        out = Path(tmp) / "bundle.tar.gz"
        cmd = [str(binary), "build", "-t", "wasm", *(a for e in entrypoints for a in ("-e", e)), "-o", str(out),
               str(src)]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise InvalidInput(f"opa build -t wasm took more than {timeout:g} s") from None
        except OSError as exc:
            raise EnvironmentProblem(f"cannot run the OPA binary {binary}: {exc}") from exc
        if proc.returncode != 0:
            text = (proc.stderr or proc.stdout).decode("utf-8", "replace")
            diags = []
            for line in text.splitlines():
                m = _BUILD_ERROR.search(line.strip())
                if m:
                    file = names.get(m["file"], m["file"])
                    diags.append(Diagnostic(f"{m['msg']} [{m['code']}]", location=Location(file, int(m["line"]))))
            raise InvalidInput("OPA could not compile the policies to WebAssembly",
                               diags or [Diagnostic(text.strip()[:500] or f"exit {proc.returncode}")])
        with tarfile.open(out) as tar:
            member = next((m for m in tar.getmembers() if m.name.lstrip("/") == "policy.wasm"), None)
            fh = tar.extractfile(member) if member else None
            if fh is None:
                raise InvalidInput("opa build produced no policy.wasm")
            return fh.read()


def _cache_key(digest: str, entrypoints: tuple[str, ...]) -> str:
    return hashlib.sha256((digest + "\n" + "\n".join(entrypoints)).encode()).hexdigest()


def precompiled(modules: Mapping[str, str], settings: Settings | None = None) -> bool:
    """Whether ``modules`` have a module without compiling: shipped, or compiled earlier (cached)."""
    from hcops.policy.engines.wasm_runtime import cache_dir

    digest = policy_digest(with_entry(modules))
    return find_shipped(digest) is not None or \
        (cache_dir(settings) / f"{_cache_key(digest, EVAL_ENTRYPOINTS)}.wasm").is_file()


EVAL_ENTRYPOINTS = (ENTRYPOINT, *PART_ENTRYPOINTS)


def compiled_for(policy: Mapping[str, str], entrypoints: tuple[str, ...] = EVAL_ENTRYPOINTS,
                 settings: Settings | None = None) -> Compiled:
    """The module for ``policy``: shipped, cached from an earlier compile, or compiled now (and cached)."""
    from hcops.policy.engines.wasm_runtime import cache_dir

    digest = policy_digest(policy)
    key = _cache_key(digest, entrypoints)
    found = find_shipped(digest)
    if found is not None and set(entrypoints) <= set(found.entrypoints):
        return found
    cached = cache_dir(settings) / f"{key}.wasm"
    if cached.is_file():
        return Compiled(cached.read_bytes(), digest, entrypoints, "compiled")
    wasm = compile_wasm(policy, entrypoints, settings=settings)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".tmp{id(wasm)}")
        tmp.write_bytes(wasm)
        tmp.replace(cached)
    except OSError:
        pass
    return Compiled(wasm, digest, entrypoints, "compiled")


# ------------------------------------------------------------------------------------- regeneration
def builtin_packs(root: Path | None = None, settings: Settings | None = None) -> dict[str, dict[str, str]]:
    """The gate and runtime packs as the engines see them (name -> source, entry module included)."""
    from hcops.policy.sources import RUNTIME_DIR, builtin_policy_dir, collect_policies, modules_of

    base = root or builtin_policy_dir(settings)
    return {
        "gate": with_entry(modules_of(collect_policies(builtin_dir=base))),
        "runtime": with_entry(modules_of(collect_policies(builtin_dir=base / RUNTIME_DIR))),
    }


def opa_version(binary: Path) -> str:
    import subprocess

    out = subprocess.run([str(binary), "version"], capture_output=True, text=True).stdout
    m = re.search(r"^Version:\s*(\S+)", out, re.M)
    return m.group(1) if m else "unknown"


def stale_packs(root: Path | None = None, settings: Settings | None = None) -> list[str]:
    """Names of the built-in packs whose shipped module is missing or was compiled from other sources."""
    packs = shipped_manifest().get("packs") or {}
    out = []
    for name, policy in builtin_packs(root, settings).items():
        entry = packs.get(name) or {}
        if entry.get("digest") != policy_digest(policy) or find_shipped(policy_digest(policy)) is None:
            out.append(name)
    return out


def regenerate(root: Path | None = None, settings: Settings | None = None) -> dict[str, Any]:
    binary = find_opa(settings)
    if binary is None:
        raise SystemExit("the OPA binary is needed (scripts/bootstrap opa)")
    from hcops.policy.engines.wasm_runtime import OpaWasm, load_module

    manifest: dict[str, Any] = {"opa": opa_version(binary), "regenerate": REGENERATE, "packs": {}}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name, policy in builtin_packs(root, settings).items():
        wasm = compile_wasm(policy, EVAL_ENTRYPOINTS, opa=binary)
        # instantiating also checks that the host provides every import
        instance = OpaWasm(load_module(wasm, settings), size=len(wasm))
        (ARTIFACTS / f"{name}.wasm").write_bytes(wasm)
        manifest["packs"][name] = {
            "module": f"{name}.wasm",
            "digest": policy_digest(policy),
            "sha256": hashlib.sha256(wasm).hexdigest(),
            "entrypoints": sorted(instance.entrypoints),
            "hostBuiltins": sorted(instance.builtins),
        }
    MANIFEST.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def warm(settings: Settings | None = None) -> None:
    """Compile the shipped modules for this machine into the cache (the first check does it otherwise)."""
    from hcops.policy.engines.wasm_runtime import load_module

    for entry in (shipped_manifest().get("packs") or {}).values():
        load_module((ARTIFACTS / str(entry["module"])).read_bytes(), settings)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    settings = Settings.from_env()  # this command's boundary, as the CLI's is for hcops
    if args == ["--check"]:
        stale = stale_packs(settings=settings)
        if stale:
            print(f"stale: {', '.join(stale)} (run: {REGENERATE})", file=sys.stderr)
            return 1
        return 0
    if args == ["--if-stale"] and not stale_packs(settings=settings):
        warm(settings)
        print("wasm packs up to date; compiled code cached")
        return 0
    manifest = regenerate(settings=settings)
    for name, entry in manifest["packs"].items():
        print(f"{name}: {entry['module']} {entry['digest'][:12]} host built-ins {entry['hostBuiltins']}")
    return 0


if __name__ == "__main__":  # pragma: no cover - the regeneration command (REGENERATE)
    raise SystemExit(main())
