"""Functional folders for threat intelligence: the IOC store and API keys.

They run after the Incidents folder (``{{incidentId}}`` exists) as the analyst.
"""

from __future__ import annotations

from collection_builder import (
    check,
    expect,
    folder,
    header,
    json_body,
    number,
    problem,
    request,
    save,
    status,
)

IOC_FIELDS = ("id", "type", "value", "confidence", "tlp", "tags", "active", "stix_id", "version")
CIDR_IOC_ID = 'Number(pm.collectionVariables.get("cidrIocId"))'

INTEL = folder(
    "Intelligence (IOCs)",
    "Store, merge, bulk-import, check, extract and link indicators of compromise.",
    [
        request(
            "Add a CIDR IOC",
            "POST",
            "/iocs",
            [
                status(201),
                json_body(*IOC_FIELDS),
                header("ETag", '^"1"$'),
                header("Location", r"^/iocs/\d+$"),
                expect("canonical network", 'pm.expect(body.value).to.eql("10.0.0.0/8");'),
                save("cidrIocId", "body.id"),
            ],
            auth="analystToken",
            body={
                "type": "cidr",
                "value": "10.0.0.0/8",
                "confidence": 80,
                "source": "postman",
                "tags": ["internal"],
                "tlp": "green",
            },
        ),
        request(
            "Add a defanged URL IOC",
            "POST",
            "/iocs",
            [
                status(201),
                expect(
                    "stored refanged, type detected",
                    'pm.expect(body.type).to.eql("url");',
                    'pm.expect(body.value).to.eql("https://evil.example.com/a?b=1");',
                ),
                save("urlIocId", "body.id"),
            ],
            auth="analystToken",
            body={"value": "hxxps://evil[.]example[.]com/a?b=1", "confidence": 70},
        ),
        request(
            "Add a known IOC again merges it",
            "POST",
            "/iocs",
            [
                status(200),
                expect(
                    "same IOC, higher confidence kept",
                    'pm.expect(body.id).to.eql(Number(pm.collectionVariables.get("urlIocId")));',
                    "pm.expect(body.confidence).to.eql(90);",
                ),
            ],
            auth="analystToken",
            body={"value": "https://evil.example.com/a?b=1", "confidence": 90},
        ),
        request(
            "Bulk import reports bad items by index",
            "POST",
            "/iocs/bulk",
            [
                status(200),
                json_body("created", "merged", "failed", "results", "errors"),
                expect(
                    "two stored, the second refused",
                    "pm.expect(body.created).to.eql(2);",
                    "pm.expect(body.errors.map((e) => e.index)).to.eql([1]);",
                ),
            ],
            auth="analystToken",
            body={
                "items": [
                    {"value": "198.51.100.7"},
                    {"value": "not an indicator at all"},
                    {"value": "d41d8cd98f00b204e9800998ecf8427e"},
                ],
                "source": "bulk-feed",
                "confidence": 60,
            },
        ),
        request(
            "List IOCs by type",
            "GET",
            "/iocs?type=cidr&min_confidence=50",
            [
                status(200),
                json_body("items", "next_cursor"),
                expect(
                    "the network is listed",
                    f"pm.expect(body.items.map((i) => i.id)).to.include({CIDR_IOC_ID});",
                ),
            ],
            auth="viewerToken",
        ),
        request(
            "Search IOCs: a hash by its beginning",
            "GET",
            "/iocs?q=D41D8CD98F",
            [
                status(200),
                expect(
                    "the digest is found by its first characters, in any case",
                    "pm.expect(body.items.map((i) => i.value))"
                    '.to.eql(["d41d8cd98f00b204e9800998ecf8427e"]);',
                ),
            ],
            auth="viewerToken",
        ),
        request(
            "Search IOCs: addresses by their leading octets",
            "GET",
            "/iocs?q=198.51.100.",
            [
                status(200),
                expect(
                    "the bulk-imported address is found",
                    'pm.expect(body.items.map((i) => i.value)).to.include("198.51.100.7");',
                ),
            ],
            auth="viewerToken",
        ),
        request(
            "Check an address inside a stored network",
            "GET",
            "/iocs/check?value=10.1.2.3",
            [
                status(200),
                json_body("value", "type", "known_bad", "max_confidence", "matches"),
                expect(
                    "found through the CIDR",
                    "pm.expect(body.known_bad).to.eql(true);",
                    'pm.expect(body.matches[0].match).to.eql("cidr");',
                ),
            ],
            auth="viewerToken",
        ),
        request(
            "Check several values at once",
            "POST",
            "/iocs/check",
            [
                status(200),
                expect(
                    "one known, one not, one invalid",
                    "const known = body.items.map((i) => i.known_bad);",
                    "pm.expect(known).to.eql([true, false, false]);",
                    "pm.expect(body.items[2].error).to.be.a('string');",
                ),
            ],
            auth="viewerToken",
            body={"values": ["10.9.9.9", "203.0.113.99", "no such thing"]},
        ),
        request(
            "Extract IOCs from a report and link them",
            "POST",
            "/iocs/extract",
            [
                status(200),
                json_body("found", "known", "stored"),
                expect(
                    "defanged indicators found and stored",
                    'pm.expect(body.found).to.have.property("cve");',
                    "pm.expect(body.stored.length).to.be.at.least(1);",
                ),
            ],
            auth="analystToken",
            body={
                "text": "Beacon to hxxp://c2[.]badsite[.]net/gate from 10.1.2.3, "
                "see CVE-2024-3400.",
                "save": True,
                "source": "report",
                "incident_id": number("incidentId"),
            },
        ),
        request(
            "Read an IOC",
            "GET",
            "/iocs/{{cidrIocId}}",
            [status(200), json_body(*IOC_FIELDS), header("ETag", '^"1"$')],
            auth="viewerToken",
        ),
        request(
            "Edit an IOC with If-Match",
            "PATCH",
            "/iocs/{{cidrIocId}}",
            [
                status(200),
                header("ETag", '^"2"$'),
                expect("edited", "pm.expect(body.confidence).to.eql(95);"),
            ],
            auth="analystToken",
            headers={"If-Match": '"1"'},
            body={"confidence": 95},
        ),
        request(
            "Link an IOC to the incident",
            "POST",
            "/incidents/{{incidentId}}/iocs",
            [
                status(200),
                json_body("items", "linked"),
                expect("linked", f"pm.expect(body.linked).to.include({CIDR_IOC_ID});"),
            ],
            auth="analystToken",
            body={"ioc_ids": [number("cidrIocId")]},
        ),
        request(
            "IOCs of the incident",
            "GET",
            "/incidents/{{incidentId}}/iocs",
            [
                status(200),
                expect(
                    "the linked IOC",
                    f"pm.expect(body.items.map((i) => i.id)).to.include({CIDR_IOC_ID});",
                ),
            ],
            auth="viewerToken",
        ),
    ],
)

API_KEYS = folder(
    "API keys",
    "Issue a scoped key, use it, rotate it, read its usage, revoke it.",
    [
        request(
            "Issue a read-only API key",
            "POST",
            "/api-keys",
            [
                status(201),
                json_body("id", "prefix", "key", "scopes", "state"),
                header("Cache-Control", "no-store"),
                expect("shown once, scoped", 'pm.expect(body.scopes).to.eql(["iocs:read"]);'),
                save("apiKeyId", "body.id"),
                save("apiKey", "body.key"),
            ],
            auth="analystToken",
            body={"name": "siem-lookup", "scopes": ["iocs:read"]},
        ),
        request(
            "The key reads IOCs",
            "GET",
            "/iocs?limit=5",
            [status(200), json_body("items", "next_cursor")],
            auth="apiKey",
        ),
        request(
            "The read-only key cannot write",
            "POST",
            "/iocs",
            [problem(403)],
            auth="apiKey",
            body={"value": "192.0.2.55"},
        ),
        request(
            "List my API keys",
            "GET",
            "/api-keys",
            [
                status(200),
                json_body("items", "next_cursor"),
                check(
                    "never the secret",
                    'pm.expect(pm.response.text()).to.not.include(pm.collectionVariables.get("apiKey"))',
                ),
            ],
            auth="analystToken",
        ),
        request(
            "Read an API key",
            "GET",
            "/api-keys/{{apiKeyId}}",
            [status(200), expect("no secret", 'pm.expect(body).to.not.have.property("key");')],
            auth="analystToken",
        ),
        request(
            "Rotate the key without grace",
            "POST",
            "/api-keys/{{apiKeyId}}/rotate",
            [
                status(200),
                expect(
                    "a new secret",
                    'pm.expect(body.key).to.not.eql(pm.collectionVariables.get("apiKey"));',
                ),
                save("rotatedApiKey", "body.key"),
            ],
            auth="analystToken",
            body={"grace_seconds": 0},
        ),
        request(
            "The rotated-out secret is refused",
            "GET",
            "/iocs?limit=1",
            [problem(401)],
            auth="apiKey",
        ),
        request(
            "The new secret works", "GET", "/iocs?limit=1", [status(200)], auth="rotatedApiKey"
        ),
        request(
            "Usage of the key",
            "GET",
            "/api-keys/{{apiKeyId}}/usage?limit=50",
            [
                status(200),
                json_body("items"),
                expect("uses were logged", "pm.expect(body.items.length).to.be.at.least(2);"),
            ],
            auth="analystToken",
        ),
        request(
            "Suspicious-activity findings for the key",
            "GET",
            "/api-keys/{{apiKeyId}}/findings",
            [status(200), json_body("items")],
            auth="analystToken",
        ),
        request(
            "Revoke the key", "DELETE", "/api-keys/{{apiKeyId}}", [status(204)], auth="analystToken"
        ),
        request(
            "The revoked key is refused",
            "GET",
            "/iocs?limit=1",
            [problem(401)],
            auth="rotatedApiKey",
        ),
    ],
)

CLEANUP = folder(
    "Intelligence cleanup",
    "Delete an IOC (after the exports have used it).",
    [
        request(
            "Delete an IOC", "DELETE", "/iocs/{{urlIocId}}", [status(204)], auth="analystToken"
        ),
        request(
            "The deleted IOC is gone",
            "GET",
            "/iocs/{{urlIocId}}",
            [problem(404)],
            auth="analystToken",
        ),
    ],
)
