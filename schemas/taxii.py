"""Schemas of the TAXII area: TAXII 2.1 query parameters and envelopes, the admin views of
collections and feeds, and the STIX REST endpoints' queries and bundles.

A malformed TAXII parameter (``limit``, ``next``, ``added_after``, ``match[...]``) is a
400 here, never a 500 deeper down.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError, fields, post_load, validate

from models.taxii import SERVABLE_TLP_LEVELS
from models.vocabulary import FEED_AUTH_TYPES, ROLES, TLP_LEVELS
from schemas.common import (
    ComputedBoolean,
    ComputedList,
    FullMatch,
    JsonBoolean,
    JsonInteger,
    ResponseSchema,
    StrictSchema,
    edit_of,
    identifier,
    one_of,
    page_of,
    text,
    timestamp,
    trimmed_string,
)
from schemas.iocs import IocListQuerySchema
from security.modules.stix_mapping import EXPORTABLE_IOC_TYPES
from security.modules.taxii.server import VERSION_KEYWORDS, ObjectQuery, PageKey

STIX_ID = re.compile(
    r"[a-z0-9][a-z0-9-]*[a-z0-9]--[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)
STIX_TYPE = re.compile(r"[a-z0-9][a-z0-9-]{1,248}[a-z0-9]")
SPEC_VERSION = re.compile(r"[0-9]+\.[0-9]+")
MAX_MATCH_VALUES = 100
# A match[version] item as documented: a keyword or an RFC 3339 timestamp with an offset.
_DATE = (
    "(?:[1-9][0-9]{3}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
    "|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
    "|(?:[1-9][0-9](?:0[48]|[2468][048]|[13579][26])|(?:[13579][26]|[2468][048])00)-02-29)"
)
VERSION_ITEM = (
    f"first|last|all|{_DATE}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{{1,6}})?"
    "(?:Z|[+-](?:0[0-9]|1[0-5]):[0-5][0-9])"
)
_VERSION_ITEM = re.compile(VERSION_ITEM)
# What str.strip() removes, spelled out for the document (ECMA and Python read \s apart).
_SPACE = (
    "[\\t-\\r\\u001c-\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a"
    "\\u2028\\u2029\\u202f\\u205f\\u3000]"
)
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# An http(s) URL with a DNS name (ASCII labels), an IPv4 or a bracketed IPv6 host, an
# optional port, then visible ASCII; what it cannot say (a resolvable, allowed host, a
# port in range) is the SSRF guard's 422. One pattern for the document and the check.
FEED_URL = (
    rf"^[Hh][Tt][Tt][Pp][Ss]?://(?:{_LABEL}(?:\.{_LABEL})*\.?|\[[0-9A-Fa-f:.]+\])"
    r"(?::[0-9]{1,5})?(?:[/?#][!-~]*)?$"
)


def parse_taxii_timestamp(value: str) -> datetime:
    """RFC 3339 with an offset (``Z``), in UTC; raises ValueError for anything else.

    Converted here because Python accepts offsets up to +-23:59 and PostgreSQL only up to
    +-15:59: left as given, such a moment would fail in the database.
    """
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("timestamp without Z or offset")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp outside the supported range of dates") from None


class TaxiiTimestamp(fields.Field):
    """An RFC 3339 timestamp with an offset; documented as ``format: date-time``."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("metadata", {"type": "string", "format": "date-time"})
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr, data, **kwargs) -> datetime:
        try:
            return parse_taxii_timestamp(str(value))
        except ValueError:
            raise ValidationError("not a timestamp like 2026-01-02T03:04:05.123456Z") from None


class CommaSeparated(fields.Field):
    """``match[...]`` values: comma-separated, each checked by ``parse``.

    ``item_pattern`` (the regex ``parse`` applies) documents the whole list as a pattern.
    """

    def __init__(self, parse, item_pattern: str | None = None, **kwargs) -> None:
        if item_pattern is not None:
            item = f"{_SPACE}*(?:{item_pattern}){_SPACE}*"
            pattern = f"^{item}(?:,{item}){{0,{MAX_MATCH_VALUES - 1}}}$"
            kwargs["metadata"] = {
                "type": "string",
                "pattern": pattern,
                **kwargs.get("metadata", {}),
            }
        super().__init__(**kwargs)
        self.parse = parse

    def _deserialize(self, value: Any, attr, data, **kwargs) -> tuple:
        items = [item.strip() for item in str(value).split(",")]
        if not items or len(items) > MAX_MATCH_VALUES or any(not item for item in items):
            raise ValidationError(f"1 to {MAX_MATCH_VALUES} comma-separated values")
        return tuple(self.parse(item) for item in items)


def _matching(pattern: re.Pattern[str], what: str):
    def parse(item: str) -> str:
        if not pattern.fullmatch(item):
            raise ValidationError(f"{item!r} is not {what}")
        return item

    return parse


VERSIONS_HELP = {
    "description": "comma-separated: first, last, all, or timestamps (compared as instants)"
}


def _version(item: str) -> str | datetime:
    """One ``match[version]`` item, held to the pattern the document declares for it."""
    if not _VERSION_ITEM.fullmatch(item):
        raise ValidationError(f"{item!r} is not first, last, all or a timestamp")
    if item in VERSION_KEYWORDS:
        return item
    try:
        return parse_taxii_timestamp(item)
    except ValueError:
        raise ValidationError(f"{item!r} is not first, last, all or a timestamp") from None


def _next(value: str) -> PageKey:
    return PageKey.decode(value)


def _versions_field() -> CommaSeparated:
    return CommaSeparated(_version, VERSION_ITEM, data_key="match[version]", metadata=VERSIONS_HELP)


def _spec_versions_field() -> CommaSeparated:
    return CommaSeparated(
        _matching(SPEC_VERSION, "a spec version like 2.1"),
        SPEC_VERSION.pattern,
        data_key="match[spec_version]",
    )


class TaxiiPagingSchema(StrictSchema):
    """What every listing endpoint accepts; loads into :class:`ObjectQuery`."""

    limit = fields.Integer(strict=False, validate=validate.Range(min=1))
    next = fields.String(validate=[validate.Length(min=1, max=512), FullMatch(r"^[A-Za-z0-9_-]+$")])
    added_after = TaxiiTimestamp()
    spec_versions = _spec_versions_field()

    @post_load
    def _to_query(self, data: dict, **kwargs) -> ObjectQuery:
        if "next" in data:
            data["next"] = _next(data["next"])
        return ObjectQuery(**data)


class TaxiiObjectQuerySchema(TaxiiPagingSchema):
    """Get an Object: one id, any of its versions."""

    versions = _versions_field()


class TaxiiDeleteQuerySchema(StrictSchema):
    """Delete an Object: which versions (default: the last), of which spec version."""

    versions = _versions_field()
    spec_versions = _spec_versions_field()

    @post_load
    def _to_query(self, data: dict, **kwargs) -> ObjectQuery:
        return ObjectQuery(**data)


class TaxiiObjectsQuerySchema(TaxiiObjectQuerySchema):
    """Get Objects and Get Object Manifests."""

    ids = CommaSeparated(_matching(STIX_ID, "a STIX id"), STIX_ID.pattern, data_key="match[id]")
    types = CommaSeparated(
        _matching(STIX_TYPE, "a STIX type"), STIX_TYPE.pattern, data_key="match[type]"
    )


class TaxiiEnvelopeSchema(StrictSchema):
    """The body of Add Objects: an envelope (``more``/``next`` are allowed and ignored)."""

    objects = fields.List(fields.Dict(), required=True, validate=validate.Length(min=1))
    more = JsonBoolean()
    next = fields.String()


# --- admin views: collections and feeds -------------------------------------------------


def _roles(**kwargs) -> fields.List:
    return fields.List(fields.String(validate=validate.OneOf(ROLES)), **kwargs)


class CollectionCreateSchema(StrictSchema):
    title = trimmed_string(required=True)
    description = trimmed_string(min_length=0, max_length=2000, load_default="")
    min_confidence = JsonInteger(load_default=0, validate=validate.Range(min=0, max=100))
    max_tlp = fields.String(
        load_default="amber",
        validate=validate.OneOf(SERVABLE_TLP_LEVELS, error="must be one of {choices} (never red)"),
    )
    ioc_types = fields.List(
        fields.String(validate=validate.OneOf(sorted(EXPORTABLE_IOC_TYPES))),
        load_default=list,
        metadata={"description": "empty: every type"},
    )
    sources = fields.List(
        trimmed_string(), load_default=list, metadata={"description": "empty: every source"}
    )
    active_only = JsonBoolean(load_default=True)
    read_roles = _roles(load_default=lambda: list(ROLES))
    write_roles = _roles(load_default=lambda: ["admin"])


CollectionEditSchema = edit_of(CollectionCreateSchema, "CollectionEditSchema")


class FeedCreateSchema(StrictSchema):
    name = trimmed_string(required=True, max_length=100)
    api_root_url = fields.String(
        required=True,
        validate=[validate.Length(max=2000), FullMatch(FEED_URL)],
        metadata={"description": "the remote TAXII 2.1 API root, e.g. https://host/api1/"},
    )
    collection_id = trimmed_string(required=True)
    auth_type = fields.String(load_default="none", validate=validate.OneOf(FEED_AUTH_TYPES))
    username = trimmed_string(max_length=255, load_only=True)
    password = fields.String(validate=validate.Length(min=1, max=1024), load_only=True)
    token = fields.String(validate=validate.Length(min=1, max=4096), load_only=True)
    poll_interval_seconds = JsonInteger(
        load_default=3600, validate=validate.Range(min=60, max=7 * 24 * 3600)
    )
    page_size = JsonInteger(load_default=100, validate=validate.Range(min=1, max=1000))
    default_confidence = JsonInteger(load_default=50, validate=validate.Range(min=0, max=100))
    default_tlp = fields.String(load_default="amber", validate=validate.OneOf(TLP_LEVELS))
    enabled = JsonBoolean(load_default=True)


FeedEditSchema = edit_of(FeedCreateSchema, "FeedEditSchema")


# --- STIX REST --------------------------------------------------------------------------


class StixBundleQuerySchema(IocListQuerySchema):
    """``GET /stix/bundle``: the ``/iocs`` filters, and how many IOCs at most (one bundle,
    no cursor)."""

    limit = fields.Integer(load_default=1000, validate=validate.Range(min=1, max=10_000))

    class Meta:
        exclude = ("cursor",)


class StixImportQuerySchema(StrictSchema):
    """``POST /stix/import``: what applies to objects that do not say it themselves."""

    source = trimmed_string(load_default="stix-import")
    default_confidence = fields.Integer(load_default=50, validate=validate.Range(min=0, max=100))
    default_tlp = fields.String(load_default="amber", validate=validate.OneOf(TLP_LEVELS))


class StixBundleSchema(StrictSchema):
    """A STIX bundle as posted to ``/stix/import`` (2.0's ``spec_version`` tolerated)."""

    type = fields.String(required=True, validate=validate.Equal("bundle"))
    id = fields.String(required=True, validate=FullMatch(STIX_ID.pattern))
    spec_version = fields.String()
    objects = fields.List(fields.Dict(), load_default=list)


# --- responses ----------------------------------------------------------------------------


class CollectionDefinitionSchema(ResponseSchema):
    id = fields.UUID(required=True)
    title = text()
    description = text()
    min_confidence = fields.Integer(required=True, validate=validate.Range(min=0, max=100))
    max_tlp = one_of(SERVABLE_TLP_LEVELS)
    ioc_types = fields.List(fields.String(), required=True)
    sources = fields.List(fields.String(), required=True)
    active_only = fields.Boolean(required=True)
    read_roles = fields.List(fields.String(), required=True)
    write_roles = fields.List(fields.String(), required=True)
    created_at = timestamp()
    updated_at = timestamp()
    version = fields.Integer(required=True, validate=validate.Range(min=1))


CollectionDefinitionPageSchema = page_of(
    CollectionDefinitionSchema, "CollectionDefinitionPageSchema"
)


class FeedSchema(ResponseSchema):
    id = identifier()
    name = text()
    api_root_url = text()
    collection_id = text()
    auth_type = one_of(FEED_AUTH_TYPES)
    has_credentials = ComputedBoolean(
        lambda feed: feed.credentials_encrypted is not None,
        metadata={"description": "never shown"},
    )
    poll_interval_seconds = fields.Integer(required=True)
    page_size = fields.Integer(required=True)
    default_confidence = fields.Integer(required=True)
    default_tlp = one_of(TLP_LEVELS)
    enabled = fields.Boolean(required=True)
    source = text(
        attribute="source_name",
        metadata={"description": "the source of the IOCs it brings: taxii:<name>"},
    )
    added_after = timestamp(nullable=True)
    last_polled_at = timestamp(nullable=True)
    last_success_at = timestamp(nullable=True)
    last_error = text(nullable=True)
    last_object_count = fields.Integer(required=True)
    created_at = timestamp()
    updated_at = timestamp()
    version = fields.Integer(required=True, validate=validate.Range(min=1))


FeedPageSchema = page_of(FeedSchema, "FeedPageSchema")


class UnmappedObjectSchema(ResponseSchema):
    id = text()
    reason = text()


class PollResultSchema(ResponseSchema):
    feed = text()
    objects = fields.Integer(required=True)
    pages = fields.Integer(required=True)
    created = fields.Integer(required=True)
    merged = fields.Integer(required=True)
    failures = fields.List(fields.Nested(UnmappedObjectSchema), required=True)
    skipped = fields.Integer(required=True)
    added_after = timestamp(nullable=True)


class FeedPollSchema(ResponseSchema):
    result = fields.Nested(PollResultSchema, required=True)
    feed = fields.Nested(FeedSchema, required=True)


class SkippedObjectSchema(ResponseSchema):
    id = text()
    type = text()


class StixImportResultSchema(ResponseSchema):
    """A :class:`~security.modules.taxii.stix_exchange.StixImport`, per STIX object."""

    created = fields.Integer(required=True)
    merged = fields.Integer(required=True)
    ioc_ids = ComputedList(lambda imported: sorted(set(imported.ioc_ids)), fields.Integer())
    unmapped = ComputedList(
        lambda imported: [
            {"id": object_id, "reason": reason} for object_id, reason in imported.failures.items()
        ],
        fields.Nested(UnmappedObjectSchema),
    )
    skipped = ComputedList(
        lambda imported: [
            {"id": object_id, "type": object_type} for object_id, object_type in imported.skipped
        ],
        fields.Nested(SkippedObjectSchema),
    )
