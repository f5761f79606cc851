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

import threading
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

    Events of one source repeat the same keys at the same paths, so normalising a key,
    building its dotted path and choosing the names it is indexed under is done once
    per place in the tree (a :class:`_Slot`) for the whole batch.
    """
    root = _Tree(fields).root
    return [_flatten(event, root) for event in events]


def flatten_event(event: Any, fields: Container[str] | None = None) -> FlatEvent:
    """Index every scalar of a decoded JSON event once, as described in the module docstring.

    Events are normally objects; a bare string or list is still indexed, for keywords.

    ``fields`` restricts the index to those names (:data:`ALL_VALUES` included only if
    listed): a listed name has exactly the values of the full index, in the same
    order, so a caller that reads only listed names sees no difference. Most leaves
    of a typical event are read by no rule, and indexing (above all lower-casing)
    them was half the cost of evaluating a batch.

    Without ``fields``, the slots made for one event are kept for the thread's next
    (events one by one, as :func:`~.compiler.evaluate` flattens them, repeat their
    keys too), while they hold under :data:`MAX_KEPT_BYTES`, so that arbitrary keys
    or deep nesting cannot make them grow without bound.

    Iterative rather than recursive, so deeply nested objects or lists cannot
    exhaust the stack.
    """
    if fields is not None:
        return _flatten(event, _Tree(fields).root)
    tree = getattr(_kept, "tree", None) or _Tree(None)
    flat = _flatten(event, tree.root)
    _kept.tree = tree if tree.bytes <= MAX_KEPT_BYTES else None
    return flat


MAX_KEPT_BYTES = 4 * 1024 * 1024
"""About the memory :func:`flatten_event` keeps per thread for slots."""
_SLOT_BYTES = 400  # a slot, its two dictionaries and its names, besides the path itself
_kept = threading.local()


class _Tree:
    """The slots made for a batch of events (or a thread's single events): the ``fields``
    they index, their ``root`` (the event itself), and about the memory they hold."""

    __slots__ = ("bytes", "fields", "root")

    def __init__(self, fields: Container[str] | None) -> None:
        self.fields = fields
        self.bytes = 0
        self.root = _Slot(self, "", "")


class _Slot:
    """A place in an event's tree: its dotted ``path``, the ``key`` it is known by, the
    index names a scalar there goes under (``targets``, those of the tree's fields only),
    and the slots of its children, made on first use and shared by the tree's events."""

    __slots__ = ("attributes", "children", "key", "path", "targets", "tree")

    def __init__(self, tree: _Tree, path: str, key: str) -> None:
        tree.bytes += _SLOT_BYTES + len(path)
        self.tree = tree
        self.path = path
        self.key = key
        names: tuple[str, ...] = () if not path else (key,) if path == key else (key, path)
        if tree.fields is not None:
            names = tuple(name for name in names if name in tree.fields)
        self.targets = names
        self.children: dict[str, _Slot] = {}
        self.attributes: dict[str, _Slot] = {}

    def child(self, key: str) -> "_Slot":
        """The slot of member ``key`` of an object here (``key`` as JSON wrote it)."""
        slot = self.children.get(key)
        if slot is None:
            name = normalize_field_name(key)
            path = f"{self.path}.{name}" if self.path else name
            slot = self.children[key] = _Slot(self.tree, path, name)
        return slot

    def attribute(self, attribute: str) -> "_Slot":
        """The slot of XML attribute ``attribute`` of the element here."""
        slot = self.attributes.get(attribute)
        if slot is None:
            name = normalize_field_name(attribute)
            slot = _Slot(self.tree, f"{self.path}.{name}", f"{self.key}_{name}")
            self.attributes[attribute] = slot
        return slot


_CONTAINERS = (dict, list)


def _flatten(event: Any, root: _Slot) -> FlatEvent:
    """:func:`flatten_event` from the slot of the event's root (and its cached children).

    The loop over an object's members is the hot path of ingestion, so scalars are
    indexed inline there; lists and the XML members take the general :func:`place`.
    """
    flat = FlatEvent()
    raw, lowered = flat.raw, flat.lowered
    leaves: list[Any] = []  # every scalar, in order: the ALL_VALUES entry
    pending: list[tuple[Any, _Slot]] = []  # objects and lists still to index, and where

    def index(item: Any, targets: tuple[str, ...]) -> None:
        """Add a scalar under each of ``targets`` (its lower-cased text too unless null)."""
        for name in targets:
            raw.setdefault(name, []).append(item)
        if item is None:
            return
        text = item.lower() if type(item) is str else as_text(item).lower()
        for name in targets:
            lowered.setdefault(name, []).append(text)

    def place(item: Any, slot: _Slot) -> None:
        """Index a scalar now; queue an object or a list for the loop below."""
        if isinstance(item, _CONTAINERS):
            pending.append((item, slot))
            return
        leaves.append(item)
        if slot.targets:
            index(item, slot.targets)

    place(event, root)
    while pending:
        node, slot = pending.pop()
        if isinstance(node, list):
            for element in node:
                place(element, slot)
            continue
        children = slot.children
        for member_key, member in node.items():
            if member_key == _XML_TEXT:
                place(member, slot)
                continue
            if member_key == _XML_ATTRIBUTES and isinstance(member, dict):
                for attribute, value in member.items():
                    place(value, slot.attribute(str(attribute)))
                continue
            member_slot = children.get(member_key) if type(member_key) is str else None
            if member_slot is None:
                # as JSON keys are: a caller's 1 and True must not share a slot
                member_slot = slot.child(str(member_key))
            if isinstance(member, _CONTAINERS):
                pending.append((member, member_slot))
            else:
                leaves.append(member)
                if member_slot.targets:
                    index(member, member_slot.targets)
    fields = root.tree.fields
    if fields is None or ALL_VALUES in fields:
        raw[ALL_VALUES] = leaves
        lowered[ALL_VALUES] = [
            leaf.lower() if type(leaf) is str else as_text(leaf).lower()  # most leaves: no call
            for leaf in leaves
            if leaf is not None
        ]
    return flat
