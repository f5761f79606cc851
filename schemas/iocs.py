"""Schemas for the IOC store: what a client may send, and the exact shape of each answer.

Request schemas check shape and ranges; whether a value is a valid indicator, and its
canonical form, is decided by ``security.modules.ioc_values`` (a 422 naming the reason).
Response schemas are the shape of every answer: resources dump an ``Ioc`` and the
``security.modules.intel`` results through them, and the OpenAPI document declares them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar

from marshmallow import (
    Schema,
    ValidationError,
    fields,
    missing,
    pre_load,
    validate,
    validates_schema,
)

from models.vocabulary import TLP_LEVELS
from schemas.common import (
    ChangeSchema,
    ComputedBoolean,
    ComputedInteger,
    ComputedString,
    JsonBoolean,
    JsonInteger,
    PageQuerySchema,
    QueryBoolean,
    ResponseSchema,
    StrictSchema,
    identifier,
    one_of,
    page_of,
    text,
    timestamp,
    trimmed_string,
    username_of,
    utc_datetime,
)
from security.modules.intel import (
    MAX_BULK_ITEMS,
    MAX_TAG_LENGTH,
    MAX_TAGS,
    RejectedItem,
)
from security.modules.ioc_values import IOC_TYPES, MAX_VALUE_LENGTH

DESCRIPTION_MAX = 20_000
MAX_CHECK_VALUES = 1_000
MAX_LINKED_IOCS = 500
# Extraction reads reports and mail bodies; 1 MiB bodies are the default request cap anyway.
MAX_EXTRACT_TEXT = 1_000_000


def _value_field(**kwargs) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=MAX_VALUE_LENGTH), **kwargs)


def _tags_field(**kwargs) -> fields.List:
    return fields.List(
        fields.String(validate=validate.Length(min=1, max=MAX_TAG_LENGTH)),
        validate=validate.Length(max=MAX_TAGS),
        **kwargs,
    )


class IocAttributesSchema(Schema):
    """The fields a client sets on an IOC, besides its type and value (unknown fields are
    refused: marshmallow's default). Text checks come from :class:`StrictSchema` below."""

    confidence = JsonInteger(validate=validate.Range(min=0, max=100))
    source = trimmed_string(max_length=255)
    description = fields.String(validate=validate.Length(max=DESCRIPTION_MAX))
    tags = _tags_field()
    tlp = fields.String(validate=validate.OneOf(TLP_LEVELS))
    first_seen = utc_datetime()
    last_seen = utc_datetime()
    expires_at = utc_datetime(allow_none=True, metadata={"description": "null: never expires"})


class IocItemSchema(IocAttributesSchema):
    """One item of a bulk import; the bulk body's own schema has checked all its text."""

    type = fields.String(
        validate=validate.OneOf(IOC_TYPES),
        metadata={"description": "detected from the value when left out"},
    )
    value = _value_field(required=True, metadata={"description": "defanged forms accepted"})


class IocCreateSchema(IocItemSchema, StrictSchema):
    pass


def _fast_check(field: fields.Field) -> Callable[[Any], bool] | None:
    """A check that a JSON value passes ``field`` unchanged, or None for fields (dates) that
    convert what they load. Strings and integers load as themselves once their validators
    pass, so running just the validators applies the field's own rules."""
    if type(field) is fields.List:
        inner = _fast_check(field.inner)
        if inner is None:
            return None
        return lambda value: (
            type(value) is list and all(inner(item) for item in value) and _passes(field, value)
        )
    kind = {fields.String: str, fields.Integer: int, JsonInteger: int}.get(type(field))
    if kind is None or field.data_key is not None or field.attribute is not None:
        return None
    return lambda value: type(value) is kind and _passes(field, value)


def _passes(field: fields.Field, value: Any) -> bool:
    try:
        for validator in field.validators:
            validator(value)
    except ValidationError:
        return False
    return True


class BulkItemLoader:
    """Loads bulk items with :class:`IocItemSchema`'s rules, at a fraction of its cost.

    A full ``schema.load`` costs some 14 us per item, three quarters of it walking every
    field of the schema. Most feed items are a dict of plain strings and integers that
    pass unchanged: for those, only the fields present are checked, with the schema's own
    validators (:func:`_fast_check`). Anything else (dates, unknown keys, a missing
    required field, a failing value) goes through ``schema.load``, which decides and words
    the errors. The rules stay written once, in the schema.
    """

    def __init__(self, schema: Schema | None = None) -> None:
        self._schema = schema or IocItemSchema()
        self._required = {name for name, field in self._schema.fields.items() if field.required}
        checks = {name: _fast_check(field) for name, field in self._schema.fields.items()}
        # Hooks or load defaults would change what a load returns: then never take a shortcut.
        plain = not any(self._schema._hooks.values()) and all(
            field.load_default is missing for field in self._schema.fields.values()
        )
        self._checks = {name: check for name, check in checks.items() if check and plain}

    def __call__(self, item: Any) -> dict:
        """The loaded item; raises :class:`RejectedItem` with the schema's messages."""
        if type(item) is dict and self._passes_unchanged(item):
            return dict(item)
        try:
            return self._schema.load(item)
        except ValidationError as error:
            raise RejectedItem(error.normalized_messages()) from None

    def _passes_unchanged(self, item: dict) -> bool:
        if not self._required.issubset(item):
            return False
        checks = self._checks
        for name, value in item.items():
            check = checks.get(name)
            if check is None or not check(value):
                return False
        return True


class ItemList(fields.List):
    """A JSON array whose entries are checked later, one by one, so that a bad entry is an
    error at its index, not a refusal of the whole body (:class:`BulkItemLoader`).

    Documented as its inner field says; loading only checks that the value is an array,
    instead of deserialising 10,000 entries twice (some 1.4 us each).
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs) -> list:
        if not isinstance(value, list):
            raise self.make_error("invalid")
        return value


class IocBulkSchema(StrictSchema):
    """Up to 10,000 IOCs; the other fields are defaults for items that leave them out."""

    items = ItemList(
        fields.Raw(),
        required=True,
        validate=validate.Length(min=1, max=MAX_BULK_ITEMS),
        metadata={
            "description": "each item as in POST /iocs; an item that is not (a non-object "
            "too) is reported by index in errors, the others are stored"
        },
    )
    source = trimmed_string(max_length=255)
    confidence = JsonInteger(validate=validate.Range(min=0, max=100))
    tlp = fields.String(validate=validate.OneOf(TLP_LEVELS))
    tags = _tags_field()

    @pre_load
    def _reject_unstorable_text(self, data: Any, **kwargs) -> Any:
        """:class:`StrictSchema`'s check, which walks every string of the body (some 9 us
        per item in Python), run only when the body may fail it. Encoded as JSON with
        ASCII escapes, a NUL or a surrogate can only appear as a ``\\u0000`` or ``\\udXXX``
        escape; a body with neither passes for certain. (``\\ud`` also matches Hangul and,
        as pairs, emoji: those bodies take the full check.)"""
        encoded = json.dumps(data)
        if "\\u0000" in encoded or "\\ud" in encoded:
            return super()._reject_unstorable_text(data, **kwargs)
        return data


class IocUpdateSchema(IocAttributesSchema, ChangeSchema):
    """The attributes to change, at least one."""


class IocListQuerySchema(PageQuerySchema):
    type = fields.String(validate=validate.OneOf(IOC_TYPES))
    source = trimmed_string(max_length=255)
    tag = trimmed_string(max_length=MAX_TAG_LENGTH)
    tlp = fields.String(validate=validate.OneOf(TLP_LEVELS))
    min_confidence = fields.Integer(validate=validate.Range(min=0, max=100))
    active = QueryBoolean(metadata={"description": "true: not expired; false: expired"})
    q = trimmed_string(
        max_length=200,
        metadata={
            "description": (
                "text in a source, a description or a domain, URL, e-mail or CVE value; the"
                " beginning of an address or hash (185.220., 9f86d0); or an indicator"
            )
        },
    )


class IocCheckQuerySchema(StrictSchema):
    value = _value_field(required=True, metadata={"description": "type is detected"})


class IocBatchCheckSchema(StrictSchema):
    values = fields.List(
        fields.String(validate=validate.Length(min=1, max=MAX_VALUE_LENGTH)),
        required=True,
        validate=validate.Length(min=1, max=MAX_CHECK_VALUES),
    )


class IocExtractSchema(StrictSchema):
    openapi_extra: ClassVar[dict[str, Any]] = {
        "if": {"required": ["incident_id"]},
        "then": {"required": ["save"], "properties": {"save": {"const": True}}},
    }
    text = fields.String(required=True, validate=validate.Length(min=1, max=MAX_EXTRACT_TEXT))
    save = JsonBoolean(load_default=False, metadata={"description": "store what is found"})
    source = trimmed_string(max_length=255)
    confidence = JsonInteger(validate=validate.Range(min=0, max=100))
    tlp = fields.String(validate=validate.OneOf(TLP_LEVELS))
    tags = _tags_field()
    incident_id = JsonInteger(
        validate=validate.Range(min=1),
        metadata={"description": "link the stored IOCs to this incident (needs save)"},
    )

    @validates_schema
    def _incident_needs_save(self, data: dict, **kwargs) -> None:
        if data.get("incident_id") and not data.get("save"):
            raise ValidationError("linking to an incident needs save: true", "incident_id")


class IncidentIocLinkSchema(StrictSchema):
    ioc_ids = fields.List(
        JsonInteger(validate=validate.Range(min=1)),
        required=True,
        validate=validate.Length(min=1, max=MAX_LINKED_IOCS),
    )


# --- responses ----------------------------------------------------------------------------


class IocSchema(ResponseSchema):
    id = identifier()
    type = one_of(IOC_TYPES)
    value = text()
    confidence = fields.Integer(required=True, validate=validate.Range(min=0, max=100))
    source = text()
    description = text()
    tags = fields.List(fields.String(), required=True)
    tlp = one_of(TLP_LEVELS)
    first_seen = timestamp()
    last_seen = timestamp()
    expires_at = timestamp(nullable=True)
    active = ComputedBoolean(
        lambda indicator: indicator.is_active(), metadata={"description": "false once expired"}
    )
    sighting_count = fields.Integer(required=True, validate=validate.Range(min=0))
    last_sighted_at = timestamp(nullable=True)
    stix_id = ComputedString(
        lambda indicator: f"indicator--{indicator.stix_id}",
        metadata={"description": "indicator--<UUIDv4>, stable for exports"},
    )
    created_by = username_of("created_by")
    created_at = timestamp()
    updated_at = timestamp()
    version = fields.Integer(required=True, validate=validate.Range(min=1))


IocPageSchema = page_of(IocSchema, "IocPageSchema")


class IocListSchema(ResponseSchema):
    items = fields.List(fields.Nested(IocSchema), required=True)


class IocMatchSchema(ResponseSchema):
    match = one_of(["exact", "cidr"])
    active = fields.Boolean(required=True)
    confidence = fields.Integer(required=True)
    tlp = one_of(TLP_LEVELS)
    ioc = fields.Nested(IocSchema, required=True)


class IocCheckSchema(ResponseSchema):
    value = text(metadata={"description": "the value in canonical form"})
    type = one_of(IOC_TYPES)
    known_bad = fields.Boolean(required=True, metadata={"description": "an active IOC matched"})
    max_confidence = fields.Integer(required=True, allow_none=True)
    matches = fields.List(fields.Nested(IocMatchSchema), required=True)


class IocBatchCheckItemSchema(IocCheckSchema):
    value = text(metadata={"description": "canonical form; as given when invalid"})
    type = one_of(IOC_TYPES, nullable=True)
    error = text(nullable=True, metadata={"description": "why the value is not an indicator"})


class IocBatchCheckResultSchema(ResponseSchema):
    items = fields.List(fields.Nested(IocBatchCheckItemSchema), required=True)


class BulkItemResultSchema(ResponseSchema):
    index = fields.Integer(required=True)
    id = identifier()
    status = one_of(["created", "merged"])


class BulkItemErrorSchema(ResponseSchema):
    index = fields.Integer(required=True)
    errors = fields.Dict(keys=fields.String(), required=True)


def _count(status: str) -> ComputedInteger:
    return ComputedInteger(lambda result: result.count(status))


class IocBulkResultSchema(ResponseSchema):
    """A :class:`~security.modules.intel.BulkResult`: the counts, then each item's outcome."""

    created = _count("created")
    merged = _count("merged")
    failed = ComputedInteger(lambda result: len(result.errors))
    results = fields.List(fields.Nested(BulkItemResultSchema), required=True)
    errors = fields.List(fields.Nested(BulkItemErrorSchema), required=True)


class IocExtractResultSchema(ResponseSchema):
    found = fields.Dict(
        keys=fields.String(validate=validate.OneOf(IOC_TYPES)),
        values=fields.List(fields.String()),
        required=True,
    )
    known = fields.List(fields.Nested(IocCheckSchema), required=True)
    stored = fields.List(fields.Nested(IocSchema), required=True)


class IncidentIocLinkResultSchema(IocListSchema):
    linked = fields.List(identifier(), required=True, metadata={"description": "newly linked"})
