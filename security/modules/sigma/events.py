"""Flattening of JSON events into the field index Sigma rules are matched against.

Lives here: how a field name in a rule finds values in an event. Not here: how
values are compared (see :mod:`.values`).

An event is flattened once, and every rule then looks fields up in the index:

* Each scalar leaf is indexed under its **leaf key** (``Image``) and under its
  **dotted path** (``Event.EventData.Image``). A rule may use either.
* Lists are transparent: ``{"a": [{"b": 1}, {"b": 2}]}`` gives ``b`` (and
  ``a.b``) the values 1 and 2, and a field matches when any of its values does.
  Several leaves with the same key (in different objects) are pooled the same way.
* The XML rendering of Windows events by evtx_dump is understood: a
  ``#text`` member is the value of its parent key, and an ``#attributes``
  member ``{"Provider": {"#attributes": {"Name": x}}}`` is indexed as
  ``Provider_Name`` (the name Sigma's Windows taxonomy uses) and as the dotted
  path ``Event.System.Provider.Name``.
* Field names are compared case-insensitively and without spaces, so
  ``sourcename`` finds Defender's ``Source Name``.
* Every leaf is also indexed under :data:`ALL_VALUES`, for keyword detections.

Numbers and booleans are indexed as themselves and as text (``4688`` and
``"4688"``; ``true``), so a rule value matches whichever way the event wrote it.
"""

from collections.abc import Container, Iterable
from typing import Any

ALL_VALUES = " "
"""Index key holding every leaf of the event; never a field name (those lose their spaces)."""

_XML_TEXT = "#text"
_XML_ATTRIBUTES = "#attributes"


def normalize_field_name(name: str) -> str:
    """Return the form under which a field is indexed and looked up (lower case, no spaces)."""
    return name.replace(" ", "").lower()


def as_text(value: Any) -> str:
    """Text form of a non-null scalar: what string patterns are matched against."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


class FlatEvent:
    """Field index of one event: normalised field name -> values, in two views.

    ``raw`` holds the JSON values (for null, exists, numeric and boolean tests,
    and, through :func:`as_text`, for case-sensitive patterns, regular
    expressions and CIDR); ``lowered`` holds the lower-cased text of the
    non-null values, for the default case-insensitive patterns, which are most
    of what rules test.
    """

    __slots__ = ("lowered", "raw")

    def __init__(self) -> None:
        self.raw: dict[str, list[Any]] = {ALL_VALUES: []}
        self.lowered: dict[str, list[str]] = {ALL_VALUES: []}


def flatten_events(events: Iterable[Any], fields: Container[str] | None = None) -> list[FlatEvent]:
    """:func:`flatten_event` for each event of a batch, each field's names derived once.

    Events of one source repeat the same keys at the same paths, so normalising a key
    and building its dotted path is done once per ``(path, key)`` for the whole batch.
    """
    names: dict[tuple[str, str], tuple[str, str]] = {}
    return [_flatten(event, fields, names) for event in events]


def flatten_event(event: Any, fields: Container[str] | None = None) -> FlatEvent:
    """Index every scalar of a decoded JSON event once, as described in the module docstring.

    Events are normally objects; a bare string or list is still indexed, for keywords.

    ``fields`` restricts the index to those names (:data:`ALL_VALUES` included only if
    listed): a listed name has exactly the values of the full index, in the same
    order, so a caller that reads only listed names sees no difference. Most leaves
    of a typical event are read by no rule, and indexing (above all lower-casing)
    them was half the cost of evaluating a batch.

    Iterative rather than recursive, so deeply nested objects or lists cannot
    exhaust the stack.
    """
    return _flatten(event, fields, {})


def _flatten(
    event: Any, fields: Container[str] | None, names: dict[tuple[str, str], tuple[str, str]]
) -> FlatEvent:
    """:func:`flatten_event`, with ``names`` caching (path, key) -> (child's path, name)."""
    flat = FlatEvent()
    raw, lowered = flat.raw, flat.lowered
    leaves: list[Any] = []  # every scalar, in order: the ALL_VALUES entry
    # containers still to index: (object or list, its dotted path, the key it is known by)
    pending: list[tuple[Any, str, str]] = []

    def place(item: Any, path: str, key: str) -> None:
        """Index a scalar now; queue an object or a list for the loop below."""
        if isinstance(item, dict | list):
            pending.append((item, path, key))
            return
        leaves.append(item)
        if not path:  # the event itself is a scalar: only keywords can match it
            return
        text = None
        for name in (key,) if path == key else (key, path):
            if fields is not None and name not in fields:
                continue
            raw.setdefault(name, []).append(item)
            if item is not None:
                text = as_text(item).lower() if text is None else text
                lowered.setdefault(name, []).append(text)

    place(event, "", "")
    while pending:
        node, path, key = pending.pop()
        if isinstance(node, list):
            for element in node:
                place(element, path, key)
            continue
        for child_key, child in node.items():
            if child_key == _XML_TEXT:
                place(child, path, key)
            elif child_key == _XML_ATTRIBUTES and isinstance(child, dict):
                for attribute, value in child.items():
                    name = normalize_field_name(str(attribute))
                    place(value, f"{path}.{name}", f"{key}_{name}")
            else:
                text_key = str(child_key)  # as JSON keys are: a caller's 1 and True must not share
                derived = names.get((path, text_key))
                if derived is None:
                    name = normalize_field_name(text_key)
                    derived = names[path, text_key] = (f"{path}.{name}" if path else name, name)
                place(child, *derived)
    if fields is None or ALL_VALUES in fields:
        raw[ALL_VALUES] = leaves
        lowered[ALL_VALUES] = [
            leaf.lower() if type(leaf) is str else as_text(leaf).lower()  # most leaves: no call
            for leaf in leaves
            if leaf is not None
        ]
    return flat
