"""Render the compliance report document (``hcops.audit.report``) as JSON, Markdown or self-contained HTML."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

import hcops
from hcops.audit.report import when
from hcops.resources import bundled

FORMATS = ("html", "json", "md")
LEGEND = (
    ("verified", "a sweep measured it on the running network (and the gate judged the spec that sweep audited)"),
    ("attested", "a person stated it in an attestation that is signed off and unexpired"),
    ("declared", "only the spec says so: the gate judged the declaration, nothing measured it; never a pass"),
    ("none", "nothing measures it and no attestation covers it"),
)


def template_dir() -> Path:
    return bundled("templates") / "report"


def to_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _short(value: Any, n: int = 16) -> str:
    text = str(value or "")
    return text if len(text) <= n else text[:n] + "…"


def _bar(value: int, peak: int) -> int:
    return 0 if not peak else max(2, round(100 * value / peak)) if value else 0


def to_html(doc: dict[str, Any]) -> str:
    env = Environment(
        loader=FileSystemLoader(template_dir()),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["short"] = _short
    env.filters["when"] = when
    peak = max((d["high"] + d["medium"] + d["low"] for d in doc["history"]), default=0)
    return env.get_template("report.html.j2").render(r=doc, peak=peak, bar=_bar, version=hcops.__version__,
                                                     legend=LEGEND)


def _cell(text: Any) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")


def to_markdown(doc: dict[str, Any]) -> str:
    s = doc["summary"]
    ev = s["evidence"]
    lines = [
        f"# HIPAA compliance report: {doc['network']}",
        "",
        f"Generated {doc['generated']}; environment {doc['environment'] or '-'}; tier {doc.get('tier') or '-'}; "
        f"chain {doc['chainId']}; spec {doc['specHash']}.",
        "",
        f"**Verdict: {s['verdict']}** — {s['pass']} pass, {s['declared']} declared only, {s['fail']} fail, "
        f"{s.get('warning', 0)} warning, {s['waived']} waived, "
        f"{s['notCovered']} not covered of {s['controls']} controls; {s['openFindings']} open finding(s), "
        f"{s['openIncidents']} open incident(s).",
        "",
        f"**Evidence:** {ev['verified']} verified, {ev['attested']} attested, {ev['declared']} declared, "
        f"{ev['none']} none.",
        "",
    ]
    sweep, log = doc["lastSweep"], doc["log"]
    lines.append(
        f"- Last sweep: {sweep['id']} at {sweep['finished']}" if sweep else "- Last sweep: none recorded"
    )
    lines.append(
        f"- Gate: {doc['gate']['source']} {doc['gate']['time'] or ''} "
        f"({'passed' if doc['gate']['passed'] else 'failed' if doc['gate']['passed'] is False else '-'})"
    )
    if log["present"]:
        lines.append(
            f"- Audit log: {'intact' if log['intact'] else 'BROKEN: ' + str(log['firstBreak'])}, "
            f"{log['records']} records, head {log['head']['seq']} `{log['head']['hash']}`"
        )
    lines += [
        "",
        "## Controls",
        "",
        "| Control | Citation | Title | Gate rules | Runtime rules | Status | Evidence | How it is known |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in doc["controls"]:
        known = [f"{p['part']}: {p['evidence']} ({'; '.join(p['detail'])})" for p in c["evidenceParts"]]
        lines.append(
            "| "
            + " | ".join(
                _cell(x)
                for x in (
                    c["id"],
                    c["citation"],
                    c["title"],
                    ", ".join(r["id"] for r in c["gateRules"]) or "—",
                    ", ".join(r["id"] for r in c["runtimeRules"]) or "—",
                    c["status"].upper(),
                    c["evidence"],
                    " / ".join(known + c["productionGaps"]),
                )
            )
            + " |"
        )
    lines += ["", "Evidence classes:", ""] + [f"- **{name}**: {text}" for name, text in LEGEND]
    lines += ["", "## Open findings", ""]
    if doc["findings"]:
        lines += ["| Source | Severity | Rule | Control | Resource | Message |", "|---|---|---|---|---|---|"]
        lines += [
            "| "
            + " | ".join(
                _cell(f.get(k)) for k in ("source", "severity", "id", "control", "resource", "message")
            )
            + " |"
            for f in doc["findings"]
        ]
    else:
        lines.append("None.")
    lines += ["", "## Waivers", ""]
    if doc["waivers"]:
        lines += [
            "| Rule | Resource | Justification | Approver | Expires | Status |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            "| "
            + " | ".join(
                _cell(w.get(k)) for k in ("id", "resource", "justification", "approver", "expires", "status")
            )
            + " |"
            for w in doc["waivers"]
        ]
    else:
        lines.append("None.")
    lines += ["", "## Attestations", ""]
    entries = doc["attestations"]["entries"]
    if entries:
        lines += ["| Control | Statement | Attested by | On | Expires | Evidence | Status |",
                  "|---|---|---|---|---|---|---|"]
        lines += ["| " + " | ".join(_cell(a.get(k)) for k in ("control", "statement", "attestedBy", "attestedOn",
                                                             "expires", "evidence", "status")) + " |"
                  for a in entries]
    else:
        lines.append("None" + (f" ({doc['attestations']['file']} is empty)." if doc["attestations"]["file"] else "."))
    lines += ["", "## Incidents", ""]
    for i in doc["incidents"]["open"]:
        lines.append(f"- OPEN {i['incident']}: {i['rule']} on {i['resource']} since {i['firstSeen']}")
    for i in doc["incidents"]["recent"]:
        lines.append(
            f"- cleared {i['incident']}: {i['rule']} on {i['resource']} {i['firstSeen']} – {i['cleared']}"
        )
    if not doc["incidents"]["open"] and not doc["incidents"]["recent"]:
        lines.append("None.")
    lines += [
        "",
        "## Findings over time (last 30 days)",
        "",
        "| Day | Sweeps | Failed | Peak high | Peak medium | Peak low |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {d['day']} | {d['sweeps']} | {d['failed']} | {d['high']} | {d['medium']} | {d['low']} |"
        for d in doc["history"]
    ]
    lines += [
        "",
        "## Organizations",
        "",
        "| Organization | Role | Covered entity | BAA | Nodes | High | Medium | Low |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for o in doc["organizations"]:
        nodes = (
            ", ".join(
                f"{n['name']} ({'up' if n['up'] else 'down' if n['up'] is False else '?'})"
                for n in o["nodes"]
            )
            or "—"
        )
        lines.append(
            f"| {o['name']} | {o['role']} | {'yes' if o['coveredEntity'] else 'no'} | "
            f"{'signed' if o['baaSigned'] else 'none'} | {nodes} | {o['findings']['high']} | "
            f"{o['findings']['medium']} | {o['findings']['low']} |"
        )
    return "\n".join(lines) + "\n"


def render(doc: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return to_json(doc)
    if fmt == "md":
        return to_markdown(doc)
    return to_html(doc)
