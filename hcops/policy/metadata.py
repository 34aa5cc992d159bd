"""Rule metadata read from ``# METADATA`` comment blocks (YAML) in Rego source.

regopy has no ``rego.metadata.*``, so hcops reads the blocks itself, the way OPA does: a block is a
run of comment-only lines whose first line is ``# METADATA``; the rest of the run, with the ``#`` and
one following space removed, is a YAML document; it annotates the next statement of the module.

Every ``deny``/``warn`` rule body of the built-in pack must carry a block with::

    title: ...
    description: ...
    custom:
      id: HC-...
      hipaa: [164.312(a)(1), ...]
      control: AC-1
      severity: high | medium | low
      remediation: ...

User policies may omit the block (their findings are then reported with severity ``high`` and
control ``unknown``); a block that is present must be well formed in both cases.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hcops.errors import Diagnostic, InvalidInput, Location
from hcops.policy.regosrc import ModuleInfo, Statement, scan
from hcops.spec.source import SourceMap, parse_yaml

SEVERITIES = ("high", "medium", "low")
FINDING_RULES = ("deny", "warn")


@dataclass(frozen=True)
class RuleMeta:
    id: str
    title: str
    description: str
    hipaa: tuple[str, ...]
    control: str
    severity: str
    remediation: str
    package: str
    rule: str  # deny | warn
    file: str
    line: int

    @property
    def level(self) -> str:
        return "warn" if self.rule == "warn" else "deny"

    @property
    def location(self) -> Location:
        return Location(self.file, self.line)


@dataclass(frozen=True)
class _Block:
    start: int  # line of "# METADATA"
    lines: tuple[tuple[int, int, str], ...]  # (file line, column offset of the YAML text, YAML text)


def _blocks(info: ModuleInfo) -> list[_Block]:
    blocks: list[_Block] = []
    comments = [c for c in info.comments if c.own_line]
    i = 0
    while i < len(comments):
        c = comments[i]
        if c.text.strip() != "METADATA":
            i += 1
            continue
        body: list[tuple[int, int, str]] = []
        j = i + 1
        while (
            j < len(comments)
            and comments[j].line == comments[j - 1].line + 1
            and comments[j].text.strip() != "METADATA"
        ):
            text = comments[j].text
            strip = 1 if text.startswith(" ") else 0
            # column (0-based) in the file of the first character of the YAML text
            body.append((comments[j].line, comments[j].col + strip, text[strip:]))
            j += 1
        blocks.append(_Block(c.line, tuple(body)))
        i = j
    return blocks


def _next_statement(info: ModuleInfo, line: int) -> Statement | None:
    for st in info.statements:
        if st.line > line:
            return st
    return None


def _yaml_location(filename: str, block: _Block, line0: int, col0: int) -> Location:
    if 0 <= line0 < len(block.lines):
        fline, fcol0, _ = block.lines[line0]
        return Location(filename, fline, fcol0 + col0 + 1)
    return Location(filename, block.start)


def _key_location(filename: str, block: _Block, positions: SourceMap, path: tuple[str, ...]) -> Location:
    found = positions.keys.get(path)
    if found is None:
        return Location(filename, block.start)
    return _yaml_location(filename, block, found.line - 1, found.column - 1)


def _load_yaml(filename: str, block: _Block) -> tuple[Any, SourceMap, list[Diagnostic]]:
    """Parse a block: the document, where its keys stand (block coordinates) and the problems found."""
    text = "\n".join(t for _, _, t in block.lines)
    empty = SourceMap()
    if not text.strip():
        return None, empty, [Diagnostic("empty METADATA block", location=Location(filename, block.start))]
    try:
        doc, positions = parse_yaml(text, filename, what="METADATA block")
    except InvalidInput as exc:
        diags = []
        for d in exc.diagnostics:
            loc = d.location
            where = (_yaml_location(filename, block, loc.line - 1, loc.column - 1)
                     if loc is not None else Location(filename, block.start))
            problem = d.message.removeprefix("invalid YAML: ")
            diags.append(Diagnostic(f"malformed METADATA block: {problem}", location=where))
        return None, empty, diags
    if not isinstance(doc, Mapping):
        where = Location(filename, block.start)
        return None, empty, [Diagnostic("METADATA block must be a YAML mapping", location=where)]
    return doc, positions, []


def _rule_meta(
    info: ModuleInfo, block: _Block, doc: Mapping[str, Any], positions: SourceMap, rule: str, line: int
) -> tuple[RuleMeta | None, list[Diagnostic]]:
    fn = info.filename
    diags: list[Diagnostic] = []

    def need_str(node: Mapping[str, Any], key: str, where: str) -> str:
        value = node.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
        path = tuple(where.split(".")[:-1]) + (key,)
        loc = _key_location(fn, block, positions, path) if key in node else Location(fn, block.start)
        what = "missing" if key not in node else "must be a non-empty string"
        diags.append(Diagnostic(f"METADATA {where}{key} {what}", path=f"{where}{key}", location=loc))
        return ""

    title = need_str(doc, "title", "")
    description = need_str(doc, "description", "")
    custom = doc.get("custom")
    if not isinstance(custom, Mapping):
        loc = _key_location(fn, block, positions, ("custom",)) if "custom" in doc else Location(fn, block.start)
        diags.append(Diagnostic("METADATA custom must be a mapping with id, hipaa, control, severity, "
                                "remediation", path="custom", location=loc))
        return None, diags
    rid = need_str(custom, "id", "custom.")
    control = need_str(custom, "control", "custom.")
    remediation = need_str(custom, "remediation", "custom.")
    severity = custom.get("severity")
    if severity not in SEVERITIES:
        loc = (_key_location(fn, block, positions, ("custom", "severity")) if "severity" in custom
               else Location(fn, block.start))
        diags.append(Diagnostic(f"METADATA custom.severity must be one of {', '.join(SEVERITIES)} "
                                f"(got {severity!r})", path="custom.severity", location=loc))
    hipaa = custom.get("hipaa")
    if isinstance(hipaa, str):
        hipaa = [hipaa]
    if (
        not isinstance(hipaa, list)
        or not hipaa
        or not all(isinstance(h, str | int | float) and str(h).strip() for h in hipaa)
    ):
        loc = (_key_location(fn, block, positions, ("custom", "hipaa")) if "hipaa" in custom
               else Location(fn, block.start))
        diags.append(Diagnostic("METADATA custom.hipaa must be a non-empty list of citations",
                                path="custom.hipaa", location=loc))
        hipaa = []
    if diags:
        return None, diags
    return (
        RuleMeta(
            id=rid,
            title=title,
            description=description,
            hipaa=tuple(str(h).strip() for h in hipaa),
            control=control,
            severity=str(severity),
            remediation=remediation,
            package=info.package_name,
            rule=rule,
            file=fn,
            line=line,
        ),
        [],
    )


def module_metadata(info: ModuleInfo, *, require: bool) -> tuple[list[RuleMeta], list[Diagnostic]]:
    """RuleMeta for each annotated deny/warn rule of one scanned module, and the problems found.

    With ``require`` every deny/warn rule body must be annotated.
    """
    fn = info.filename
    metas: list[RuleMeta] = []
    diags: list[Diagnostic] = []
    if info.package is None:
        return [], [Diagnostic("no package declaration", location=Location(fn, 1))]
    annotated: dict[int, tuple[_Block, Any, SourceMap]] = {}
    for block in _blocks(info):
        doc, positions, problems = _load_yaml(fn, block)
        diags.extend(problems)
        target = _next_statement(info, block.start)
        if target is None or target.kind == "import":
            diags.append(Diagnostic("METADATA block is not followed by a rule or package",
                                    location=Location(fn, block.start)))
            continue
        if target.line in annotated:
            diags.append(Diagnostic(f"second METADATA block for the statement on line {target.line}",
                                    location=Location(fn, block.start)))
            continue
        annotated[target.line] = (block, doc, positions)

    for head in info.rules:
        if head.name not in FINDING_RULES or head.function:
            continue
        entry = annotated.get(head.line)
        if entry is None:
            if require:
                diags.append(Diagnostic(f"rule {info.package_name}.{head.name} has no METADATA block",
                                        location=Location(fn, head.line, head.col)))
            continue
        block, doc, positions = entry
        if doc is None:  # already reported as malformed
            continue
        custom = doc.get("custom")
        if not require and not (isinstance(custom, Mapping) and "id" in custom):
            continue  # a user rule annotated for other tools, not for hcops
        meta, problems = _rule_meta(info, block, doc, positions, head.name, head.line)
        diags.extend(problems)
        if meta is not None:
            metas.append(meta)
    return metas, diags


def parse_metadata(filename: str, source: str, *, require: bool = True) -> list[RuleMeta]:
    """The RuleMeta of one module; raises InvalidInput (with file:line) on any problem."""
    metas, diags = module_metadata(scan(filename, source), require=require)
    if diags:
        raise InvalidInput(f"invalid policy metadata in {filename}", diags)
    return metas


def collect_metadata(
    modules: Iterable[tuple[ModuleInfo, bool]],
) -> list[RuleMeta]:
    """RuleMeta of many modules, ``(info, require)`` each; test modules are skipped.

    All problems are gathered into one InvalidInput. The same rule id on several rule bodies is
    allowed when they agree on severity, control and citations.
    """
    metas: list[RuleMeta] = []
    diags: list[Diagnostic] = []
    for info, require in modules:
        if info.is_test:
            continue
        m, d = module_metadata(info, require=require)
        metas.extend(m)
        diags.extend(d)
    first: dict[str, RuleMeta] = {}
    for meta in metas:
        seen = first.setdefault(meta.id, meta)
        if seen is not meta and (seen.severity, seen.control, seen.hipaa) != (
            meta.severity, meta.control, meta.hipaa
        ):
            diags.append(Diagnostic(
                f"rule id {meta.id} is also declared at {seen.file}:{seen.line} with a different "
                "severity, control or hipaa list",
                location=meta.location,
            ))
    if diags:
        raise InvalidInput("invalid policy metadata", diags)
    return metas


def rules_by_id(metas: Iterable[RuleMeta]) -> dict[str, RuleMeta]:
    """The first RuleMeta per id, ordered by id."""
    out: dict[str, RuleMeta] = {}
    for m in metas:
        out.setdefault(m.id, m)
    return dict(sorted(out.items()))
