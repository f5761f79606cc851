"""Functional folders for STIX 2.1 and TAXII 2.1: export, import, serve, and poll a feed.

The feed polls this same server's TAXII collection, so the server must allow its own
address (``OUTBOUND_ALLOWED_HOSTS=127.0.0.1``) and hold an ``ENCRYPTION_KEY`` for the feed's
token; ``scripts/run_newman.sh`` sets both.
"""

from __future__ import annotations

from collection_builder import expect, folder, header, json_body, problem, request, save, status

TAXII = "application/taxii+json;version=2.1"
TAXII_HEADERS = {"Accept": TAXII}
STIX_INDICATOR = {
    "type": "indicator",
    "spec_version": "2.1",
    "id": "indicator--6f1d9c4e-2b7a-4c1e-9a53-0c7e1f3b8d21",
    "created": "2026-01-01T00:00:00.000Z",
    "modified": "2026-01-01T00:00:00.000Z",
    "name": "Partner domain",
    "pattern": "[domain-name:value = 'partner-bad.example.org']",
    "pattern_type": "stix",
    "valid_from": "2026-01-01T00:00:00Z",
    "confidence": 85,
}
UNMAPPABLE = {
    **STIX_INDICATOR,
    "id": "indicator--0c3e5a71-8d4b-4f2a-b6e9-7a1d2c3b4e5f",
    "name": "Process name",
    "pattern": "[process:name = 'evil.exe']",
}
POSTED_INDICATOR = {
    **STIX_INDICATOR,
    "id": "indicator--9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
    "name": "Posted over TAXII",
    "pattern": "[ipv4-addr:value = '203.0.113.77']",
}
POSTED_MALWARE = {
    "type": "malware",
    "spec_version": "2.1",
    "id": "malware--5b6c7d8e-9f0a-4b1c-8d2e-3f4a5b6c7d8e",
    "created": "2026-01-01T00:00:00.000Z",
    "modified": "2026-01-01T00:00:00.000Z",
    "name": "Partner's loader family",
    "is_family": True,
}
MALWARE_PATH = f"/taxii2/api/collections/{{{{collectionId}}}}/objects/{POSTED_MALWARE['id']}/"


def is_bundle(title: str) -> str:
    return expect(
        title,
        'const type = pm.response.headers.get("Content-Type");',
        "pm.expect(type).to.match(/^application\\/stix\\+json/);",
        'pm.expect(body.type).to.eql("bundle");',
        "pm.expect(body.objects).to.be.an('array');",
    )


def taxii_ok(code: int = 200) -> list[str]:
    return [
        status(code),
        header("Content-Type", "^application/taxii\\+json;\\s*version=2\\.1"),
    ]


STIX = folder(
    "STIX",
    "Export IOCs and an incident's IOCs as STIX 2.1 bundles; import a partner's bundle.",
    [
        request(
            "Export IOCs as a STIX bundle",
            "GET",
            "/stix/bundle?type=cidr",
            [
                status(200),
                is_bundle("a bundle of indicators"),
                expect(
                    "the network as a STIX pattern",
                    "const patterns = body.objects.filter((o) => o.type === 'indicator')"
                    ".map((o) => o.pattern);",
                    "pm.expect(patterns).to.include(\"[ipv4-addr:value = '10.0.0.0/8']\");",
                ),
            ],
            auth="viewerToken",
        ),
        request(
            "Export an incident's IOCs as STIX",
            "GET",
            "/incidents/{{incidentId}}/stix",
            [status(200), is_bundle("the incident's indicators")],
            auth="viewerToken",
        ),
        request(
            "Import a STIX bundle",
            "POST",
            "/stix/import?source=partner-x",
            [
                status(200),
                json_body("created", "merged", "ioc_ids", "unmapped", "skipped"),
                expect(
                    "the domain stored, the process pattern reported",
                    "pm.expect(body.created + body.merged).to.eql(1);",
                    "pm.expect(body.unmapped.length).to.eql(1);",
                ),
            ],
            auth="analystToken",
            body={
                "type": "bundle",
                "id": "bundle--3a6c9e1f-4b7d-4e2a-9c5b-8d1e2f3a4b5c",
                "objects": [STIX_INDICATOR, UNMAPPABLE],
            },
        ),
    ],
)

TAXII_SERVER = folder(
    "TAXII server",
    "An admin defines a collection; clients discover it and read, add and page objects.",
    [
        request(
            "Define a TAXII collection",
            "POST",
            "/taxii/collections",
            [
                status(201),
                json_body("id", "title", "min_confidence", "max_tlp", "read_roles", "version"),
                header("ETag", '^"1"$'),
                save("collectionId", "body.id"),
            ],
            body={
                "title": "Confident indicators",
                "min_confidence": 50,
                "max_tlp": "amber",
                "write_roles": ["admin", "analyst"],
            },
        ),
        request(
            "List collection definitions",
            "GET",
            "/taxii/collections",
            [status(200), json_body("items", "next_cursor")],
        ),
        request(
            "Read a collection definition",
            "GET",
            "/taxii/collections/{{collectionId}}",
            [status(200), header("ETag", '^"1"$')],
        ),
        request(
            "Edit a collection definition",
            "PATCH",
            "/taxii/collections/{{collectionId}}",
            [status(200), header("ETag", '^"2"$')],
            headers={"If-Match": '"1"'},
            body={"description": "Indicators with confidence of 50 or more, TLP amber at most"},
        ),
        request(
            "TAXII discovery",
            "GET",
            "/taxii2/",
            [
                *taxii_ok(),
                expect("names the API root", "pm.expect(body.api_roots).to.be.an('array');"),
            ],
            auth="viewerToken",
            headers=TAXII_HEADERS,
        ),
        request(
            "TAXII API root",
            "GET",
            "/taxii2/api/",
            [
                *taxii_ok(),
                expect(
                    "TAXII 2.1",
                    "pm.expect(body.versions).to.include('application/taxii+json;version=2.1');",
                ),
            ],
            auth="viewerToken",
            headers=TAXII_HEADERS,
        ),
        request(
            "TAXII collections",
            "GET",
            "/taxii2/api/collections/",
            [
                *taxii_ok(),
                expect(
                    "the new collection is readable",
                    "const ids = body.collections.map((c) => c.id);",
                    'pm.expect(ids).to.include(pm.collectionVariables.get("collectionId"));',
                ),
            ],
            auth="viewerToken",
            headers=TAXII_HEADERS,
        ),
        request(
            "TAXII collection",
            "GET",
            "/taxii2/api/collections/{{collectionId}}/",
            [*taxii_ok(), expect("readable", "pm.expect(body.can_read).to.eql(true);")],
            auth="viewerToken",
            headers=TAXII_HEADERS,
        ),
        request(
            "TAXII objects",
            "GET",
            "/taxii2/api/collections/{{collectionId}}/objects/?limit=50",
            [
                *taxii_ok(),
                header("X-TAXII-Date-Added-First"),
                expect(
                    "indicators, never TLP red",
                    "const indicators = body.objects.filter((o) => o.type === 'indicator');",
                    "pm.expect(indicators.length).to.be.at.least(1);",
                    'pm.collectionVariables.set("stixObjectId", indicators[0].id);',
                ),
            ],
            auth="viewerToken",
            headers=TAXII_HEADERS,
        ),
        request(
            "TAXII object by id",
            "GET",
            "/taxii2/api/collections/{{collectionId}}/objects/{{stixObjectId}}/",
            [
                *taxii_ok(),
                expect(
                    "that object",
                    'const wanted = pm.collectionVariables.get("stixObjectId");',
                    "pm.expect(body.objects[0].id).to.eql(wanted);",
                ),
            ],
            auth="viewerToken",
            headers=TAXII_HEADERS,
        ),
        request(
            "TAXII object versions",
            "GET",
            "/taxii2/api/collections/{{collectionId}}/objects/{{stixObjectId}}/versions/",
            [
                *taxii_ok(),
                expect(
                    "at least one version", "pm.expect(body.versions.length).to.be.at.least(1);"
                ),
            ],
            auth="viewerToken",
            headers=TAXII_HEADERS,
        ),
        request(
            "TAXII manifest",
            "GET",
            "/taxii2/api/collections/{{collectionId}}/manifest/",
            [*taxii_ok(), expect("entries", "pm.expect(body.objects.length).to.be.at.least(1);")],
            auth="viewerToken",
            headers=TAXII_HEADERS,
        ),
        request(
            "TAXII add objects",
            "POST",
            "/taxii2/api/collections/{{collectionId}}/objects/",
            [
                *taxii_ok(202),
                expect("a status resource", "pm.expect(body.success_count).to.eql(1);"),
                save("taxiiStatusId", "body.id"),
            ],
            headers={"Accept": TAXII, "Content-Type": TAXII},
            body={"objects": [POSTED_INDICATOR]},
        ),
        request(
            "TAXII status",
            "GET",
            "/taxii2/api/status/{{taxiiStatusId}}/",
            [*taxii_ok(), expect("complete", 'pm.expect(body.status).to.eql("complete");')],
            headers=TAXII_HEADERS,
        ),
        request(
            "TAXII add any STIX object (kept as posted)",
            "POST",
            "/taxii2/api/collections/{{collectionId}}/objects/",
            [*taxii_ok(202), expect("kept", "pm.expect(body.success_count).to.eql(1);")],
            headers={"Accept": TAXII, "Content-Type": TAXII},
            body={"objects": [POSTED_MALWARE]},
        ),
        request(
            "TAXII posted object, as posted",
            "GET",
            MALWARE_PATH,
            [
                *taxii_ok(),
                expect(
                    "its own timestamps",
                    'pm.expect(body.objects[0].modified).to.eql("2026-01-01T00:00:00.000Z");',
                ),
            ],
            auth="viewerToken",
            headers=TAXII_HEADERS,
        ),
        request(
            "TAXII delete an object (every version)",
            "DELETE",
            f"{MALWARE_PATH}?match[version]=all",
            taxii_ok(),
            headers=TAXII_HEADERS,
        ),
        request(
            "TAXII deleted object is gone",
            "GET",
            MALWARE_PATH,
            [
                status(404),
                expect("a TAXII error", 'pm.expect(body.http_status).to.eql("404");'),
            ],
            auth="viewerToken",
            headers=TAXII_HEADERS,
        ),
        request(
            "TAXII without the TAXII media type is 406",
            "GET",
            "/taxii2/api/collections/",
            [
                status(406),
                header("Content-Type", "^application/taxii\\+json"),
                expect("a TAXII error", 'pm.expect(body.http_status).to.eql("406");'),
            ],
            auth="viewerToken",
            headers={"Accept": "application/xml"},
        ),
    ],
)

TAXII_FEEDS = folder(
    "TAXII feeds",
    "Register this server's own collection as a feed (token encrypted at rest), poll it, "
    "edit and forget it.",
    [
        request(
            "Register a TAXII feed",
            "POST",
            "/taxii/feeds",
            [
                status(201),
                json_body("id", "name", "api_root_url", "has_credentials", "enabled"),
                expect(
                    "the token is never shown",
                    "pm.expect(body.has_credentials).to.eql(true);",
                    'pm.expect(body).to.not.have.property("token");',
                ),
                save("feedId", "body.id"),
            ],
            body={
                "name": "self-{{runId}}",
                "api_root_url": "{{baseUrl}}/taxii2/api/",
                "collection_id": "{{collectionId}}",
                "auth_type": "bearer",
                "token": "{{adminToken}}",
                "default_confidence": 60,
                "default_tlp": "green",
            },
        ),
        request(
            "List TAXII feeds",
            "GET",
            "/taxii/feeds",
            [status(200), json_body("items", "next_cursor")],
        ),
        request(
            "Read a TAXII feed",
            "GET",
            "/taxii/feeds/{{feedId}}",
            [status(200), header("ETag", '^"1"$')],
        ),
        request(
            "Edit a TAXII feed",
            "PATCH",
            "/taxii/feeds/{{feedId}}",
            [status(200), expect("edited", "pm.expect(body.poll_interval_seconds).to.eql(600);")],
            headers={"If-Match": '"1"'},
            body={"poll_interval_seconds": 600},
        ),
        request(
            "Poll a TAXII feed",
            "POST",
            "/taxii/feeds/{{feedId}}/poll",
            [status(200), expect("objects were fetched", "pm.expect(body).to.be.an('object');")],
        ),
        request(
            "Forget a TAXII feed",
            "DELETE",
            "/taxii/feeds/{{feedId}}",
            [status(204)],
            headers={"If-Match": "*"},
        ),
        request(
            "Delete a collection definition",
            "DELETE",
            "/taxii/collections/{{collectionId}}",
            [status(204)],
            headers={"If-Match": "*"},
        ),
        request(
            "The deleted collection is gone",
            "GET",
            "/taxii/collections/{{collectionId}}",
            [problem(404)],
        ),
    ],
)
