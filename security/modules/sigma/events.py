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

    def add(self, path: str, key: str, value: Any) -> None:
        """Index one scalar under its key, its dotted path and :data:`ALL_VALUES`."""
        if not path:  # the event itself is a scalar: only keywords can match it
            names: tuple[str, ...] = (ALL_VALUES,)
        elif path == key:
            names = (ALL_VALUES, key)
        else:
            names = (ALL_VALUES, key, path)
        for name in names:
            self.raw.setdefault(name, []).append(value)
        if value is not None:
            lowered = as_text(value).lower()
            for name in names:
                self.lowered.setdefault(name, []).append(lowered)


def flatten_event(event: Any) -> FlatEvent:
    """Index every scalar of a decoded JSON event once, as described in the module docstring.

    Events are normally objects; a bare string or list is still indexed, for keywords.

    Iterative rather than recursive, so deeply nested objects or lists cannot
    exhaust the stack.
    """
    flat = FlatEvent()
    # containers still to index: (object or list, its dotted path, the key it is known by)
    pending: list[tuple[Any, str, str]] = []
    _place(flat, pending, event, "", "")
    while pending:
        node, path, key = pending.pop()
        if isinstance(node, list):
            for element in node:
                _place(flat, pending, element, path, key)
            continue
        for child_key, child in node.items():
            if child_key == _XML_TEXT:
                _place(flat, pending, child, path, key)
            elif child_key == _XML_ATTRIBUTES and isinstance(child, dict):
                for attribute, value in child.items():
                    name = normalize_field_name(str(attribute))
                    _place(flat, pending, value, f"{path}.{name}", f"{key}_{name}")
            else:
                name = normalize_field_name(str(child_key))
                _place(flat, pending, child, f"{path}.{name}" if path else name, name)
    return flat


def _place(
    flat: FlatEvent, pending: list[tuple[Any, str, str]], item: Any, path: str, key: str
) -> None:
    """Index a scalar now; queue an object or a list for the loop in :func:`flatten_event`."""
    if isinstance(item, dict | list):
        pending.append((item, path, key))
    else:
        flat.add(path, key, item)
