"""Building blocks shared by every area's schemas: list queries and strict strings for
requests; the strict :class:`ResponseSchema` base, its field helpers, paged lists and the
problem details for responses."""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, cast

from marshmallow import (
    INCLUDE,
    Schema,
    ValidationError,
    fields,
    missing,
    pre_dump,
    pre_load,
    validate,
    validates_schema,
)

from security.modules.storable import text_problem
from security.modules.utils import isoformat_z

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50


def _find_unstorable_text(value: Any) -> str | None:
    """The first problem in any string of a parsed JSON value, keys included.

    Iterative, so a deeply nested body cannot exhaust the interpreter's stack.
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return problem
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return None


class FullMatch(validate.Regexp):
    """``Regexp`` that must match the whole value.

    ``Regexp`` uses ``re.match``, where ``$`` also matches before a trailing newline, so
    ``"name\\n"`` passed a ``^...$`` pattern and reached the database. The pattern stays
    ECMA-compatible for the OpenAPI document.
    """

    regex: re.Pattern[str]  # built from a str pattern: these fields hold text

    # Narrower than Regexp's (str | bytes): the fields it validates are strings.
    def __call__(self, value: str) -> str:  # type: ignore[override]
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


class StrictSchema(Schema):
    """Unknown fields are an error, never silently stored or ignored.

    ``openapi_extra`` (JSON Schema keywords) is added to the schema's component in the
    OpenAPI document, for rules across fields that the fields cannot declare.

    Text PostgreSQL cannot store (NUL characters, unpaired surrogates from ``\\ud800``
    escapes) is a 400 here, not a database error later.
    """

    @pre_load
    def _reject_unstorable_text(self, data: Any, **kwargs) -> Any:
        if not isinstance(data, dict):
            return data
        errors = {}
        for key, value in data.items():
            problem = _find_unstorable_text([key, value])
            if problem:
                # A key that is itself unstorable cannot name the field in the answer.
                errors[key if text_problem(key) is None else "_schema"] = [problem]
        if errors:
            raise ValidationError(errors)
        return data


class ChangeSchema(StrictSchema):
    """A PATCH body: the fields to change, at least one (``{}`` is a mistake, not a no-op)."""

    openapi_extra: ClassVar[dict[str, Any]] = {"minProperties": 1}

    @validates_schema
    def _not_empty(self, data: dict, **kwargs) -> None:
        if not data:
            raise ValidationError("give at least one field to change", "_schema")


def edit_of(create_schema: type[Schema], name: str) -> type[Schema]:
    """The PATCH body of what ``create_schema`` creates: the same fields and checks, none
    required and none defaulted, because what an edit leaves out keeps its value. Loading
    the create schema with ``partial=True`` does the same, but the OpenAPI document would
    still call its fields required."""
    edited: dict[str, Any] = {}
    for field_name, field in create_schema._declared_fields.items():
        copied = copy.copy(field)
        copied.required = False
        copied.load_default = missing
        edited[field_name] = copied
    return type(name, (create_schema,), edited)


def not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("must not be blank")


def trimmed_string(min_length: int = 1, max_length: int = 255, **kwargs) -> fields.String:
    """A string with a length range; when it is required to be non-empty, whitespace alone
    does not count (it would be stored as an empty title or name)."""
    validators: list[Callable[[str], Any]] = [validate.Length(min=min_length, max=max_length)]
    if min_length > 0:
        validators.append(not_blank)
    return fields.String(validate=validators, **kwargs)


class JsonBoolean(fields.Boolean):
    """A body's boolean: JSON ``true`` or ``false`` only.

    marshmallow's ``Boolean`` also takes ``0``, ``1``, ``"yes"`` or ``"off"``; the document
    says ``type: boolean``, so a client that sent ``0`` hears it is wrong instead of having
    it read as false.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class JsonInteger(fields.Integer):
    """A body's integer: a JSON number without a fraction (``3``, or ``3.0``).

    marshmallow's ``Integer`` also takes the string ``"3"`` and truncates ``2.5`` to 2;
    the document says ``type: integer``, which refuses both.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid", input=value)
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid", input=value)
        return super()._deserialize(value, attr, data, **kwargs)


class QueryBoolean(fields.Boolean):
    """A query parameter's boolean: the words ``true`` or ``false``, as OpenAPI writes them."""

    truthy = {"true"}
    falsy = {"false"}


class UtcDateTime(fields.AwareDateTime):
    """An ISO 8601 timestamp converted to UTC on load.

    Python accepts offsets up to +-23:59 and PostgreSQL only up to +-15:59, so an offset is
    resolved here; a moment that falls outside the representable years is a 400.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs) -> datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise ValidationError("is outside the supported range of dates") from None


def utc_datetime(**kwargs) -> fields.AwareDateTime:
    """ISO 8601 timestamps; a missing offset is read as UTC; loaded values are in UTC."""
    return UtcDateTime(default_timezone=UTC, **kwargs)


class PageQuerySchema(StrictSchema):
    """``limit`` and the opaque ``cursor`` every list endpoint accepts.

    ``ranges`` names (start, end) parameter pairs: a start after its end is well formed
    but meaningless, a 422 from :func:`resources.common.load_query`.
    """

    ranges: ClassVar[tuple[tuple[str, str], ...]] = ()
    limit = fields.Integer(
        load_default=DEFAULT_PAGE_SIZE,
        validate=validate.Range(min=1, max=MAX_PAGE_SIZE),
        metadata={"description": f"page size, 1 to {MAX_PAGE_SIZE}"},
    )
    cursor = fields.String(
        validate=[validate.Length(max=512), FullMatch(r"^[A-Za-z0-9_-]*$")],
        metadata={"description": "next_cursor from the previous page"},
    )


class TimeRangeQuerySchema(PageQuerySchema):
    created_after = utc_datetime()
    created_before = utc_datetime()
    ranges = (("created_after", "created_before"),)


# --- responses ----------------------------------------------------------------------------


class ResponseShapeError(LookupError):
    """An object handed to a response schema does not have the shape the schema declares.

    A programming error (the document and the answer disagree), so it surfaces as a 500
    and fails the tests, never as a silently shorter or longer answer.
    """


# Fields that dump a value of this exact type unchanged.
_PLAIN_TYPES: dict[type[fields.Field], type] = {
    fields.Integer: int,
    fields.String: str,
    fields.Boolean: bool,
}


# How a response schema dumps one field (ResponseSchema._step): the answer's key, the
# attribute read directly from an object (None: computed, or read marshmallow's way), the
# type passed through unchanged, formatting a read value, and reading plus formatting.
_Step = tuple[str, str | None, type | None, Callable[[Any, Any], Any], Callable[[Any], Any]]


_MAPPING_TYPES: dict[type, bool] = {}


def _is_mapping(kind: type) -> bool:
    """``isinstance(value, Mapping)`` by type, remembered: the ABC check was a visible share
    of dumping a list."""
    known = _MAPPING_TYPES.get(kind)
    if known is None:
        known = _MAPPING_TYPES[kind] = issubclass(kind, Mapping)
    return known


def _unchanged_type(field: fields.Field) -> type | None:
    """The type whose values ``field`` dumps unchanged (a string field's ``str``), if its
    formatting is marshmallow's own for :data:`_PLAIN_TYPES`."""
    for kind, plain in _PLAIN_TYPES.items():
        if (
            isinstance(field, kind)
            and type(field)._serialize is kind._serialize
            and getattr(type(field), "_format_num", None) is getattr(kind, "_format_num", None)
            and not getattr(field, "as_string", False)
        ):
            return plain
    return None


class ResponseSchema(Schema):
    """The exact shape of an answer, as the OpenAPI document declares it.

    Resources dump through these (``resources.responding.respond``); the document is
    built from the same classes, so a field cannot be in one and not in the other. Every
    declared field must be readable from the object (marshmallow would skip a missing
    one), and a mapping may not carry keys the schema does not declare (marshmallow would
    drop them). ``unknown`` stays ``RAISE``: ``additionalProperties: false`` in the document.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        plain = {name: _PLAIN_TYPES.get(type(field)) for name, field in self.dump_fields.items()}
        self._plain_types = None if None in plain.values() else plain
        self._steps = [self._step(name, field) for name, field in self.dump_fields.items()]
        self._reads_attributes = (
            type(self).get_attribute is ResponseSchema.get_attribute
            and type(self).source_of is ResponseSchema.source_of
        )

    def dump(self, obj: Any, *, many: bool | None = None) -> Any:
        """As marshmallow dumps, with a shortcut for a flat dict (each of a bulk import's
        10,000 per-item results): one that already holds exactly the declared keys, with
        values of the declared plain types, would be copied unchanged, at some 8 us."""
        if not (self.many if many is None else many) and self._is_plain(obj):
            return dict(obj)
        return super().dump(obj, many=many)

    def _serialize(self, obj: Any, *, many: bool = False) -> Any:
        """marshmallow's loop over the fields, with each field's reading and formatting
        decided once per schema (:meth:`_step`) instead of for every value: a page of 50
        incidents is some 1,300 values, and marshmallow's layers of calls per value were
        most of the cost of a list answer. An object (a model row) is read attribute by
        attribute directly; a missing one is named by the general path."""
        if many and obj is not None:
            return [self._serialize(item) for item in obj]
        if self._reads_attributes and not _is_mapping(type(obj)):
            try:
                return self._serialize_attributes(obj)
            except AttributeError:
                pass
        answer = {}
        for key, _attribute, _unchanged, _finish, produce in self._steps:
            value = produce(obj)
            if value is not missing:
                answer[key] = value
        return answer

    def _serialize_attributes(self, obj: Any) -> dict[str, Any]:
        answer = {}
        for key, attribute, unchanged, finish, produce in self._steps:
            if attribute is None:
                value = produce(obj)
            else:
                value = getattr(obj, attribute)
                if type(value) is not unchanged:
                    value = finish(value, obj)
            if value is not missing:
                answer[key] = value
        return answer

    def _step(self, name: str, field: fields.Field) -> _Step:
        """How one field is dumped: ``produce(obj)`` returns what ``field.serialize(name,
        obj, accessor=self.get_attribute)`` would; a value of the exact type a plain field
        returns unchanged skips the field's formatting; ``attribute`` and ``finish`` are the
        same for an object read directly. A field that reads its value its own way is left
        to marshmallow."""
        key = name if field.data_key is None else field.data_key
        serialize = functools.partial(field.serialize, name, accessor=self.get_attribute)
        if isinstance(field, Computed):
            attribute = None
            source_of, compute = self.source_of, field.read

            def get(obj: Any) -> Any:
                return compute(source_of(obj))
        elif type(field).get_value is fields.Field.get_value and field._CHECK_ATTRIBUTE:
            attribute = name if field.attribute is None else field.attribute
            read = self.get_attribute

            def get(obj: Any) -> Any:
                return read(obj, attribute, missing)
        else:
            return key, None, None, serialize, serialize
        unchanged, format_value = _unchanged_type(field), field._serialize

        def finish(value: Any, obj: Any) -> Any:
            if value is missing:  # marshmallow's dump_default applies
                return serialize(obj)
            return format_value(value, name, obj)

        def produce(obj: Any) -> Any:
            value = get(obj)
            return value if type(value) is unchanged else finish(value, obj)

        return key, attribute, unchanged, finish, produce

    def _is_plain(self, item: Any) -> bool:
        types = self._plain_types
        return (
            types is not None
            and type(item) is dict
            and item.keys() == types.keys()
            and all(type(value) is types[name] for name, value in item.items())
        )

    def source_of(self, obj: Any) -> Any:
        """The object fields read from; a schema of a wrapper (an issued key) unwraps it."""
        return obj

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        subject = self.source_of(obj)
        try:
            if _is_mapping(type(subject)):
                return subject[attr]
            return getattr(subject, attr)
        except (KeyError, AttributeError):
            raise ResponseShapeError(
                f"{type(self).__name__} declares {attr!r}, which "
                f"{type(subject).__name__} does not have"
            ) from None

    @pre_dump
    def _refuse_undeclared_keys(self, obj: Any, **kwargs: Any) -> Any:
        if isinstance(obj, Mapping):
            undeclared = obj.keys() - self.dump_fields.keys()
            if undeclared:
                raise ResponseShapeError(
                    f"{type(self).__name__} does not declare {sorted(undeclared)}"
                )
        return obj


class Computed:
    """A field whose value ``read`` computes from the schema's whole object (a model
    method such as ``sla()``, a related row's name). The field's own type documents it."""

    parent: fields.Field | Schema | None  # set by marshmallow's Field when the schema binds it

    def __init__(self, read: Callable[[Any], Any], *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("required", True)
        super().__init__(*args, **kwargs)
        self.read = read

    def get_value(self, obj: Any, attr: str, accessor: Any = None, default: Any = missing) -> Any:
        return self.read(cast("ResponseSchema", self.parent).source_of(obj))


class Timestamp(fields.DateTime):
    """ISO 8601 in UTC with ``Z`` (``format: date-time``), the API's one time format."""

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs) -> Any:
        return None if value is None else isoformat_z(value)


class ComputedString(Computed, fields.String):
    pass


class ComputedBoolean(Computed, fields.Boolean):
    pass


class ComputedInteger(Computed, fields.Integer):
    pass


class ComputedList(Computed, fields.List):
    pass


class ComputedNested(Computed, fields.Nested):
    pass


def text(nullable: bool = False, **kwargs: Any) -> fields.String:
    return fields.String(required=True, allow_none=nullable, **kwargs)


def one_of(choices: Sequence[str], nullable: bool = False) -> fields.String:
    return fields.String(required=True, allow_none=nullable, validate=validate.OneOf(choices))


def timestamp(nullable: bool = False, **kwargs: Any) -> Timestamp:
    return Timestamp(required=True, allow_none=nullable, **kwargs)


def identifier(**kwargs: Any) -> fields.Integer:
    return fields.Integer(required=True, validate=validate.Range(min=1), **kwargs)


def username_of(relation: str, nullable: bool = True) -> ComputedString:
    """The username of the user in ``relation`` (``assignee``, ``created_by``), or null."""

    def read(obj: Any) -> str | None:
        user = getattr(obj, relation)
        return None if user is None else user.username

    return ComputedString(read, allow_none=nullable)


def page_of(item_schema: type[Schema], name: str) -> type[ResponseSchema]:
    """The ``{"items": [...], "next_cursor": ...}`` shape of every keyset-paged list."""
    page = ResponseSchema.from_dict(
        {
            "items": fields.List(fields.Nested(item_schema), required=True),
            "next_cursor": text(
                nullable=True,
                metadata={"description": "pass as ?cursor= for the next page; null at the end"},
            ),
        },
        name=name,
    )
    # from_dict builds a subclass of the class it is called on.
    return cast(type[ResponseSchema], page)


class ProblemSchema(Schema):
    """RFC 9457 problem details; extension members (``current_version``,
    ``allowed_transitions``, ...) may follow, so unknown fields are allowed here."""

    class Meta:
        unknown = INCLUDE

    type = text()
    title = text()
    status = fields.Integer(required=True, validate=validate.Range(min=400, max=599))
    detail = text()
    request_id = text(nullable=True)
    errors = fields.Dict(
        keys=fields.String(),
        metadata={"description": "per-field messages, on validation errors"},
    )
