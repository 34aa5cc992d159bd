"""The pipeline's layers, as docs/architecture.md draws them: a module may import its own layer and the
layers below it, never one above. Checked on the import statements of every module under hcops/
(including imports inside functions and under TYPE_CHECKING: a lazy import is still a dependency)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hcops"

# Lowest first. The bottom row is shared by everything; the `cli` package is the top.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"errors", "lazy", "resources", "fsutil", "clock", "settings", "progress", "py"}),
    frozenset({"spec"}),
    frozenset({"plan"}),
    frozenset({"render"}),
    frozenset({"policy"}),
    frozenset({"providers"}),
    frozenset({"audit", "backup"}),
    frozenset({"usecases"}),
    frozenset({"cli", "output", "__main__", "__init__"}),
)


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "hcops" or len(parts) < 2:
        return None
    top = parts[1]
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"hcops.{top} is in no layer: add it to LAYERS and docs/architecture.md")


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1] if len(parts) > 1 else parts
    return ".".join(parts)


def imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rsplit(".", 1)[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                found.append((node.lineno, ".".join([*base, *([node.module] if node.module else [])])))
            elif node.module:
                found.append((node.lineno, node.module))
    return found


def test_no_module_imports_a_higher_layer() -> None:
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        src = layer_of(module_name(path))
        if src is None:
            continue
        for line, target in imports(path):
            dst = layer_of(target)
            if dst is not None and dst > src:
                violations.append(f"{path.relative_to(PACKAGE.parent)}:{line}: imports {target}")
    assert not violations, "lower layers import higher ones:\n" + "\n".join(violations)


def test_the_check_sees_a_violation(tmp_path: Path) -> None:
    # The rule itself: spec (layer 1) importing providers (layer 5) is reported.
    assert layer_of("hcops.spec.models") == 1 and layer_of("hcops.providers.docker.provider") == 5
    assert layer_of("hcops.cli.init") == len(LAYERS) - 1
