"""Values PostgreSQL cannot store, found in parsed input before a write fails on them.

A ``text`` or ``jsonb`` column cannot hold the NUL character, nor an unpaired UTF-16
surrogate (which the JSON escape ``\\ud800`` produces); ``jsonb`` cannot hold NaN or an
infinite number (which Python's JSON reader makes of ``NaN``, ``Infinity`` and ``1e999``,
and YAML of ``.nan`` and ``.inf``). Such a value fails inside the database, after the
request's transaction is broken; finding it in the input first lets the caller be told
which field to fix.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any

# Enough to show the pattern of a bad document without echoing a huge one back.
MAX_REPORTED = 20

Problem = Callable[[Any], "str | None"]
"""Why a value cannot be stored, or None when it can."""


def text_problem(text: str) -> str | None:
    """Why PostgreSQL could not store ``text``, or None when it can."""
    if "\x00" in text:
        return "must not contain NUL characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (no unpaired surrogates)"
    return None


def number_problem(value: Any) -> str | None:
    """Why ``jsonb`` could not store the number ``value``, or None (also for non-numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number (not NaN, Infinity or out of range)"
    return None


def value_problem(value: Any) -> str | None:
    """:func:`text_problem` for strings, :func:`number_problem` for anything else."""
    return text_problem(value) if isinstance(value, str) else number_problem(value)


def _child_path(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def unstorable_values(document: Any, problem_of: Problem = value_problem) -> dict[str, list[str]]:
    """Where ``document`` (parsed JSON or YAML) holds a key or value ``problem_of`` refuses.

    Maps a path (``events[2].score``, ``title``; ``(document)`` for a bare value) to the
    reasons, in document order, at most :data:`MAX_REPORTED` paths; empty when everything
    can be stored. The walk is iterative, so a deeply nested document cannot exhaust the
    stack.
    """
    found: dict[str, list[str]] = {}
    pending: deque[tuple[str, Any]] = deque([("", document)])
    while pending and len(found) < MAX_REPORTED:
        path, node = pending.popleft()
        if isinstance(node, dict):
            for key, value in node.items():
                child = _child_path(path, key)
                if problem := problem_of(key):
                    found.setdefault(child, []).append(f"its name {problem}")
                pending.append((child, value))
        elif isinstance(node, list | tuple):
            pending.extend((f"{path}[{index}]", item) for index, item in enumerate(node))
        elif problem := problem_of(node):
            found.setdefault(path or "(document)", []).append(problem)
    return found
