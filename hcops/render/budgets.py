"""The validators' PodDisruptionBudgets: how many validator pods Kubernetes may evict at once (a drain) while
the validators left hold more than 2/3 of the voting power, so that the chain keeps committing."""

from __future__ import annotations

from collections.abc import Iterable


def max_unavailable_validators(powers: list[int]) -> int:
    """How many validators may be down at once with the rest still holding > 2/3 of the voting power.

    Counted against the strongest validators, so it holds whichever ones are evicted; with equal powers it
    is floor((n - 1) / 3). When that is 0 (fewer than 4 validators, dev networks only) this returns 1: a
    budget of 0 would block every node drain forever, and the chain only pauses until the pod is back.
    """
    return max(namespace_budgets(("", power) for power in powers).get("", 0), 1)  # one namespace's share


def namespace_budgets(validators: Iterable[tuple[str, int]]) -> dict[str, int]:
    """(namespace, power) of every validator -> how many of each namespace's validators may be down at once.
    Each namespace has its own PodDisruptionBudget and none sees the others, so the budgets are handed out
    together, one validator at a time round the namespaces, while the strongest validators they let go hold
    less than 1/3 of the power; a namespace may get 0 (its drains wait)."""
    by_ns: dict[str, list[int]] = {}
    for ns, power in validators:
        by_ns.setdefault(ns, []).append(power)
    total = sum(sum(p) for p in by_ns.values())
    strongest = {ns: sorted(p, reverse=True) for ns, p in by_ns.items()}
    budgets, down, grew = dict.fromkeys(sorted(by_ns), 0), 0, True
    while grew:
        grew = False
        for ns in budgets:
            if budgets[ns] < len(strongest[ns]) and 3 * (down + strongest[ns][budgets[ns]]) < total:
                down += strongest[ns][budgets[ns]]
                budgets[ns] += 1
                grew = True
    return budgets
