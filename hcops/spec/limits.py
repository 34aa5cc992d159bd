"""Bounds on what one YAML document may cost, so hostile input fails fast with a position instead of
exhausting memory, time or the stack (alias bombs, deep nesting, recursive aliases)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import yaml
from yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, DocumentStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode

# Levels of collections above any value. Real specs, overlays, waivers and data files nest fewer than
# 15 levels; the reader and the code after it (overlay merge, pydantic, json) recurse in Python, about
# 2-3 frames per level, so 200 levels stay far below Python's recursion limit of 1,000 frames, and far
# below where PyYAML's C composer, which recurses without any check, overflows the C stack (30,000
# levels: a segfault). It is enforced while composing, so the rest of a deeper document is never
# parsed: libyaml's own parser does not recurse, but its time per token grows with the flow nesting
# (30,000 levels of `[` took it 7 s).
MAX_DEPTH = 200

# Values and keys of a document, each use of an alias counted as the whole node it names (each anchored
# node's expanded size is computed once, before anything is built). The reader keeps about 600 bytes
# per value or key (composed node, built value, recorded position), so 200,000 of them cost about
# 120 MB: with the interpreter and the schema, `hcops validate` stays under 200 MB whatever the shape.
# A 1 MB spec of 2,000 organizations and 20,000 chain nodes has 118,000; the largest benchmarked one
# (5,000 chain nodes) 30,000. Alias bombs are refused before they are expanded, and a plain document is
# stopped at this many nodes while it is composed.
MAX_NODES = 200_000

# The same values and keys, each counted once per level above it. The reader records every value's
# path, a tuple as long as its depth (8 bytes a level), so few but deeply nested values (a 250 KB list
# of 125,000 items 200 levels down: 260 MB) cost as much as many flat ones. 2,000,000 is 16 MB of
# paths: an average depth of 10 at MAX_NODES (real specs: 4 to 6).
MAX_PATH_STEPS = 2_000_000

# Diagnostics reported for one document: a document that repeats one mistake thousands of times (a
# duplicate key, an unknown tag) is refused after this many, so printing them cannot take longer than
# reading the file did.
MAX_PROBLEMS = 100


class LimitExceeded(Exception):
    """A document is over one of the limits; ``mark`` is where (``source`` turns it into InvalidInput)."""

    def __init__(self, message: str, mark: Any, *, recursive: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark
        self.recursive = recursive


class TooManyProblems(Exception):
    """Raised by the reader once a document has ``MAX_PROBLEMS`` diagnostics."""


def too_deep(mark: Any) -> LimitExceeded:
    return LimitExceeded(f"invalid YAML: nested more than {MAX_DEPTH} levels deep (the limit; aliases "
                         "count as the nesting they stand for)", mark)


def too_many(mark: Any) -> LimitExceeded:
    return LimitExceeded(f"invalid YAML: more than {MAX_NODES:,} values and keys, each alias counted as "
                         "the values it stands for (the limit, which stops alias bombs); reached here", mark)


def too_heavy(mark: Any) -> LimitExceeded:
    return LimitExceeded(f"invalid YAML: more than {MAX_PATH_STEPS:,} values and keys counted once per "
                         "level of nesting above them, each alias as the values it stands for (the limit "
                         "for data both wide and deep); reached here", mark)


class NestingGuard:
    """Mixin for a PyYAML loader that stops composing past ``MAX_DEPTH`` levels.

    The composer calls ``descend_resolver`` before each node it composes (aliases excepted) and
    ``ascend_resolver`` after it: the one place to stop a document before PyYAML's C composer recurses
    into it (it has no depth check and overflows the C stack; libyaml's parser itself does not recurse)."""

    depth = 0

    def descend_resolver(self, parent: Node | None, index: Any) -> None:
        self.depth += 1
        if self.depth > _DEPTH_OF_LAST_LEVEL:
            raise too_deep(_mark(parent, index))

    def ascend_resolver(self) -> None:
        self.depth -= 1


class SizeGuard(NestingGuard):
    """``NestingGuard`` that also stops composing past ``MAX_NODES`` nodes.

    Only texts of at least ``SIZE_GUARD_FROM`` characters need it: YAML gives at most about one node per
    character (``{a,b,c}``, ``[a,b]``: half as many), so shorter texts cannot reach the limit while they
    are composed, and the smaller ones skip the cost of counting (a tenth of the composer's time)."""

    nodes = 0

    def descend_resolver(self, parent: Node | None, index: Any) -> None:
        self.nodes += 1
        self.depth += 1  # NestingGuard's work, inlined: this runs once per node
        if self.depth > _DEPTH_OF_LAST_LEVEL:
            raise too_deep(_mark(parent, index))
        if self.nodes > MAX_NODES:
            raise too_many(_mark(parent, index))


SIZE_GUARD_FROM = MAX_NODES // 2
_DEPTH_OF_LAST_LEVEL = MAX_DEPTH + 1  # the root is at depth 1, level 0


def _mark(parent: Node | None, index: Any) -> Any:
    """Where the node being composed starts, near enough: it has no position yet, but its key (in a
    mapping), the end of the sibling composed before it, or else its parent has one."""
    if parent is None:
        return None
    if isinstance(index, Node):
        return index.start_mark
    if parent.value:  # the composer appends each entry to its collection's list as it completes it
        last = parent.value[-1]
        return (last[1] if isinstance(last, tuple) else last).end_mark
    return parent.start_mark


class Budget:
    """What the reader has built so far, charged a collection at a time before its entries are built.

    ``check_expansion`` refuses most oversized documents before building starts; this also covers
    documents without anchors (which skip that pass) and bounds the work whatever the shape."""

    def __init__(self) -> None:
        self.nodes = self.steps = 0

    def spend(self, entries: int, level: int, node: Node) -> None:
        self.nodes += entries
        self.steps += entries * level
        if self.nodes > MAX_NODES:
            raise too_many(node.start_mark)
        if self.steps > MAX_PATH_STEPS:
            raise too_heavy(node.start_mark)


def check_expansion(root: Node) -> None:
    """Raise ``LimitExceeded`` if aliases expand ``root`` past ``MAX_NODES``, ``MAX_PATH_STEPS`` or
    ``MAX_DEPTH``, or if an alias refers to a node that contains it (the node graph then has a cycle).

    Iterative (post-order over the node graph, each shared node once), so neither the depth nor the
    size of the input can exhaust the stack or the time this takes."""
    done: dict[int, tuple[int, int, int]] = {}  # size, steps below, height
    open_nodes: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            open_nodes.discard(key)
            size, steps, height = 1, 0, 0
            for kid in _children(node):
                k_size, k_steps, k_height = done.get(id(kid), (1, 0, 0))
                size += k_size
                steps += k_steps + k_size  # the kid's whole subtree sits one level deeper here
                height = max(height, k_height + 1)
            done[key] = size, steps, height
            if size > MAX_NODES:
                raise too_many(node.start_mark)
            if steps > MAX_PATH_STEPS:
                raise too_heavy(node.start_mark)
            if height > MAX_DEPTH:
                raise too_deep(node.start_mark)
            continue
        if key in done:
            continue
        if key in open_nodes:  # popped again before it was finished: it is its own descendant
            raise _cycle(node)
        open_nodes.add(key)
        stack.append((node, True))
        for kid in _children(node):
            if not isinstance(kid, ScalarNode) and id(kid) not in done:
                if id(kid) in open_nodes:
                    raise _cycle(kid)
                stack.append((kid, False))


def _cycle(node: Node) -> LimitExceeded:
    return LimitExceeded("invalid YAML: recursive alias: this collection contains an alias to itself",
                         node.start_mark, recursive=True)


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, ScalarNode):
        return []
    kids: list[Node] = node.value
    return kids


def recursive_alias(text: str) -> LimitExceeded | None:
    """The first alias that refers to a collection still open around it, with its own position.

    Only called once a cycle is known to exist, to point at the alias rather than at the anchor (the
    composed graph no longer tells them apart). The event stream is flat, so this does not recurse."""
    anchors: list[tuple[str | None, Any]] = []
    try:
        for event in yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
            if isinstance(event, CollectionStartEvent):
                anchors.append((event.anchor, event.start_mark))
            elif isinstance(event, CollectionEndEvent):
                anchors.pop()
            elif isinstance(event, DocumentStartEvent):
                anchors.clear()
            elif isinstance(event, AliasEvent):
                at = next((m for a, m in anchors if a == event.anchor), None)
                if at is not None:
                    return LimitExceeded(
                        f"invalid YAML: recursive alias *{event.anchor}: it refers to the collection "
                        f"that contains it (anchored &{event.anchor} on line {at.line + 1}, column "
                        f"{at.column + 1}); YAML data cannot contain itself", event.start_mark,
                        recursive=True)
    except yaml.YAMLError:
        return None
    return None


def first_non_utf8(raw: bytes) -> tuple[int, int, int]:
    """Byte offset, line and column (in characters) of the first byte of ``raw`` that is not UTF-8."""
    try:
        raw.decode("utf-8")
        return 0, 1, 1  # the file changed since it failed to decode: no better place to point at
    except UnicodeDecodeError as exc:
        start = exc.start
    line_start = raw.rfind(b"\n", 0, start) + 1
    return start, raw.count(b"\n", 0, start) + 1, len(raw[line_start:start].decode("utf-8", "replace")) + 1


_gc_lock = threading.Lock()
_gc_users = 0
_gc_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Hold off the cyclic garbage collector while a document is read.

    Composing and building allocate object after object and free none of them until the end, so the
    collections those allocations trigger keep re-walking the growing graph of live objects for nothing:
    reading a 1 MB spec took twice as long with the collector running. Counted so that overlapping
    readers in several threads re-enable it only once the last one is done, and never enable it if
    something else had disabled it."""
    global _gc_users, _gc_was_enabled
    with _gc_lock:
        if _gc_users == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_users += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_users -= 1
            if _gc_users == 0 and _gc_was_enabled:
                gc.enable()
