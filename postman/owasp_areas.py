"""OWASP folders for the areas beyond incidents: IOCs, API keys, detection, STIX and TAXII.

They run after the incident folders of ``owasp.py`` with its users (alice and bob are
analysts, vera a viewer) and before the lockout and rate-limit folders.
"""

from __future__ import annotations

import json

from collection_builder import check, expect, folder, problem, request, save, status

TAXII = "application/taxii+json;version=2.1"
RED_IOC_VALUE = "insider-drop.example.net"
# Served by the TAXII collection and visible to every analyst: the checks that something
# is *not* returned need something that is, or they could not fail on an empty answer.
CONTROL_IOC_VALUE = "strict-control.example.net"
TAXII_WALK_PAGE_SIZE = 2
TAXII_WALK_MAX_PAGES = 500

SETUP = folder(
    "Setup: intelligence",
    "alice stores a TLP-red IOC and an amber+strict one with a source and a tag, and issues "
    "herself an API key; the admin defines a TAXII collection with the highest ceiling a "
    "collection may have (amber+strict).",
    [
        request(
            "Setup: alice stores a TLP-red IOC",
            "POST",
            "/iocs",
            [status(201), save("redIocId", "body.id"), save("redIocStixId", "body.stix_id")],
            auth="aliceToken",
            body={"value": RED_IOC_VALUE, "tlp": "red", "confidence": 90},
        ),
        request(
            "Setup: alice stores an amber+strict IOC",
            "POST",
            "/iocs",
            [status(201)],
            auth="aliceToken",
            body={
                "value": CONTROL_IOC_VALUE,
                "tlp": "amber+strict",
                "confidence": 90,
                "source": "owasp-control",
                "tags": ["owasp-control"],
            },
        ),
        request(
            "Setup: alice issues an API key",
            "POST",
            "/api-keys",
            [status(201), save("aliceKeyId", "body.id"), save("aliceKey", "body.key")],
            auth="aliceToken",
            body={"name": "alice-reader", "scopes": ["iocs:read"]},
        ),
        request(
            "Setup: admin defines a TAXII collection",
            "POST",
            "/taxii/collections",
            [status(201), save("owaspCollectionId", "body.id")],
            body={"title": "OWASP run", "min_confidence": 0, "max_tlp": "amber+strict"},
        ),
    ],
)

# Reads the collection page by page (this request again with ``next``) as the admin, who
# may see the red IOC elsewhere: no page may carry it, and the walk must reach the end and
# the amber+strict IOC, so a guard that lets red through cannot hide behind paging.
TAXII_WALK = "\n".join(
    [
        "const body = pm.response.json();",
        "const objects = body.objects || [];",
        'const page = Number(pm.collectionVariables.get("taxiiWalkPage") || 0) + 1;',
        'pm.test("page " + page + " has no red indicator", () => {',
        '    const redId = pm.collectionVariables.get("redIocStixId");',
        "    pm.expect(objects.map((o) => o.id)).to.not.include(redId);",
        f"    pm.expect(JSON.stringify(objects)).to.not.include({json.dumps(RED_IOC_VALUE)});",
        "});",
        'const servedControl = pm.collectionVariables.get("taxiiWalkServedControl") === "yes"',
        f"    || JSON.stringify(objects).includes({json.dumps(CONTROL_IOC_VALUE)});",
        f"if (body.more && page < {TAXII_WALK_MAX_PAGES}) {{",
        '    pm.collectionVariables.set("taxiiWalkPage", page);',
        '    pm.collectionVariables.set("taxiiWalkServedControl", servedControl ? "yes" : "no");',
        '    pm.collectionVariables.set("taxiiNext", body.next);',
        "    pm.execution.setNextRequest(pm.info.requestName);",
        "} else {",
        '    pm.test("every page read, the amber+strict IOC among them", () => {',
        '        pm.expect(body.more, "pages left after the walk\'s cap").to.not.eql(true);',
        "        pm.expect(page).to.be.at.least(2);",
        "        pm.expect(servedControl).to.eql(true);",
        "    });",
        '    for (const name of ["taxiiWalkPage", "taxiiWalkServedControl", "taxiiNext"]) {',
        "        pm.collectionVariables.unset(name);",
        "    }",
        "}",
    ]
)

API1 = folder(
    "API1 Broken Object Level Authorization (intelligence)",
    "Another analyst cannot see a TLP-red IOC, even through check or search, nor another "
    "user's API key; TAXII never serves TLP red.",
    [
        request(
            "API1: bob cannot read alice's red IOC",
            "GET",
            "/iocs/{{redIocId}}",
            [problem(404)],
            auth="bobToken",
        ),
        request(
            "API1: bob's check does not reveal the red IOC",
            "GET",
            "/iocs/check?value=insider-drop.example.net",
            [status(200), expect("no match", "pm.expect(body.matches).to.eql([]);")],
            auth="bobToken",
        ),
        request(
            "API1: bob cannot delete alice's red IOC",
            "DELETE",
            "/iocs/{{redIocId}}",
            [problem(404)],
            auth="bobToken",
        ),
        request(
            "API1: bob cannot read alice's API key",
            "GET",
            "/api-keys/{{aliceKeyId}}",
            [problem(404)],
            auth="bobToken",
        ),
        request(
            "API1: bob cannot revoke alice's API key",
            "DELETE",
            "/api-keys/{{aliceKeyId}}",
            [problem(404)],
            auth="bobToken",
        ),
        request(
            "API1: bob cannot read alice's key usage",
            "GET",
            "/api-keys/{{aliceKeyId}}/usage",
            [problem(404)],
            auth="bobToken",
        ),
        request(
            "API1: TAXII never serves the red IOC",
            "GET",
            "/taxii2/api/collections/{{owaspCollectionId}}/objects/?limit="
            + str(TAXII_WALK_PAGE_SIZE),
            [status(200), TAXII_WALK],
            headers={"Accept": TAXII},
            prerequest=[
                'const next = pm.collectionVariables.get("taxiiNext");',
                'if (next) pm.request.url.query.add({key: "next", value: next});',
            ],
        ),
        request(
            "API1: TAXII does not serve the red IOC by id",
            "GET",
            "/taxii2/api/collections/{{owaspCollectionId}}/objects/{{redIocStixId}}/",
            [
                status(404),
                check("a TAXII error", 'pm.expect(pm.response.json().http_status).to.eql("404")'),
            ],
            headers={"Accept": TAXII},
        ),
        request(
            "API1: the STIX export never carries the red IOC",
            "GET",
            "/stix/bundle?tlp=red",
            [
                status(200),
                expect(
                    "no indicator at all among the admin's red IOCs",
                    "const objects = body.objects || [];",
                    'pm.expect(objects.filter((o) => o.type === "indicator")).to.eql([]);',
                    f"pm.expect(pm.response.text()).to.not.include({json.dumps(RED_IOC_VALUE)});",
                ),
            ],
        ),
    ],
)

API2 = folder(
    "API2 Broken Authentication (API keys, TAXII)",
    "Forged API keys and a wrong TAXII Basic password are 401.",
    [
        request(
            "API2: forged API key",
            "GET",
            "/iocs",
            [problem(401)],
            auth=None,
            headers={"Authorization": "Bearer sak_00000000_forgedforgedforgedforgedforged"},
        ),
        request(
            "API2: TAXII without credentials",
            "GET",
            "/taxii2/",
            [status(401), check("a challenge", 'pm.response.to.have.header("WWW-Authenticate")')],
            auth=None,
            headers={"Accept": TAXII},
        ),
        request(
            "API2: alice's key works before revocation",
            "GET",
            "/iocs?limit=1",
            [status(200)],
            auth="aliceKey",
        ),
        request(
            "API2: alice revokes her key",
            "DELETE",
            "/api-keys/{{aliceKeyId}}",
            [status(204)],
            auth="aliceToken",
        ),
        request(
            "API2: the revoked API key is refused",
            "GET",
            "/iocs?limit=1",
            [problem(401)],
            auth="aliceKey",
        ),
    ],
)

API3 = folder(
    "API3 Broken Object Property Level Authorization (intelligence)",
    "Server-owned IOC, key, rule and collection properties cannot be set by clients.",
    [
        request(
            "API3: IOC with a sighting count",
            "POST",
            "/iocs",
            [
                problem(400),
                expect("names it", 'pm.expect(body.errors).to.have.property("sighting_count");'),
            ],
            auth="aliceToken",
            body={"value": "198.51.100.200", "sighting_count": 1000},
        ),
        request(
            "API3: IOC with its own STIX id",
            "POST",
            "/iocs",
            [problem(400)],
            auth="aliceToken",
            body={
                "value": "198.51.100.201",
                "stix_id": "indicator--00000000-0000-4000-8000-000000000000",
            },
        ),
        request(
            "API3: IOC edit cannot change the value",
            "PATCH",
            "/iocs/{{redIocId}}",
            [problem(400)],
            auth="aliceToken",
            body={"value": "other.example.net"},
        ),
        request(
            "API3: API key with an owner",
            "POST",
            "/api-keys",
            [problem(400)],
            auth="bobToken",
            body={"name": "x", "scopes": ["iocs:read"], "owner": "{{adminUsername}}"},
        ),
        request(
            "API3: TAXII collection with a red ceiling",
            "POST",
            "/taxii/collections",
            [problem(400)],
            body={"title": "red", "max_tlp": "red"},
        ),
    ],
)

API4 = folder(
    "API4 Unrestricted Resource Consumption (intelligence)",
    "Bulk and batch sizes are capped.",
    [
        request(
            "API4: bulk import of 10,001 IOCs",
            "POST",
            "/iocs/bulk",
            [problem(400)],
            auth="aliceToken",
            raw_body="{{bulkBody}}",
            headers={"Content-Type": "application/json"},
            prerequest=[
                "const value = (i) => `10.${i >> 8}.${i & 255}.1`;",
                "const items = Array.from({length: 10001}, (_, i) => ({value: value(i)}));",
                'pm.variables.set("bulkBody", JSON.stringify({items}));',
            ],
        ),
        request(
            "API4: STIX export limit=100000",
            "GET",
            "/stix/bundle?limit=100000",
            [problem(400)],
            auth="bobToken",
        ),
        request(
            "API4: 5,001 events in one batch",
            "POST",
            "/events",
            [problem(400)],
            auth="aliceToken",
            raw_body="{{eventsBody}}",
            headers={"Content-Type": "application/json"},
            prerequest=[
                "const events = Array.from({length: 5001}, () => ({a: 1}));",
                'pm.variables.set("eventsBody", JSON.stringify(events));',
            ],
        ),
    ],
)

API5 = folder(
    "API5 Broken Function Level Authorization (intelligence)",
    "Viewers cannot write intelligence or rules; analysts cannot administer TAXII; a key "
    "cannot carry more than its owner may do.",
    [
        request(
            "API5: viewer cannot add an IOC",
            "POST",
            "/iocs",
            [problem(403)],
            auth="veraToken",
            body={"value": "203.0.113.5"},
        ),
        request(
            "API5: viewer cannot save extracted IOCs",
            "POST",
            "/iocs/extract",
            [problem(403)],
            auth="veraToken",
            body={"text": "evil at 203.0.113.6", "save": True},
        ),
        request(
            "API5: viewer cannot create a rule",
            "POST",
            "/rules",
            [problem(403)],
            auth="veraToken",
            body={
                "name": "x",
                "severity": "low",
                "detection": {"ioc": {"type": "ip", "value": "10.0.0.1"}},
            },
        ),
        request(
            "API5: viewer cannot post events",
            "POST",
            "/events",
            [problem(403)],
            auth="veraToken",
            body={"a": 1},
        ),
        request(
            "API5: viewer cannot issue an API key",
            "POST",
            "/api-keys",
            [problem(403)],
            auth="veraToken",
            body={"name": "x", "scopes": ["iocs:read"]},
        ),
        request(
            "API5: analyst cannot mint a key beyond her permissions",
            "POST",
            "/api-keys",
            [problem(422)],
            auth="bobToken",
            body={"name": "escalate", "scopes": ["users:admin"]},
        ),
        request(
            "API5: analyst cannot define TAXII collections",
            "POST",
            "/taxii/collections",
            [problem(403)],
            auth="bobToken",
            body={"title": "mine"},
        ),
        request(
            "API5: analyst cannot register TAXII feeds",
            "POST",
            "/taxii/feeds",
            [problem(403)],
            auth="bobToken",
            body={
                "name": "x",
                "api_root_url": "https://taxii.example.com/api/",
                "collection_id": "x",
            },
        ),
        request(
            "API5: viewer cannot add TAXII objects",
            "POST",
            "/taxii2/api/collections/{{owaspCollectionId}}/objects/",
            [
                status(403),
                check("a TAXII error", 'pm.expect(pm.response.json().http_status).to.eql("403")'),
            ],
            auth="veraToken",
            headers={"Accept": TAXII, "Content-Type": TAXII},
            body={"objects": [{"type": "indicator"}]},
        ),
    ],
)


def refused_feed(name: str, url: str, code: int = 422) -> dict:
    return request(
        name,
        "POST",
        "/taxii/feeds",
        [problem(code)],
        body={"name": "ssrf-{{runId}}", "api_root_url": url, "collection_id": "x"},
    )


API7 = folder(
    "API7 Server Side Request Forgery",
    "TAXII feed URLs may not point at private, loopback (beyond TAXII_ALLOWED_HOSTS), "
    "link-local or metadata addresses, nor use other schemes.",
    [
        refused_feed("API7: feed at the cloud metadata address", "http://169.254.169.254/latest/"),
        refused_feed("API7: feed at a private network address", "http://10.0.0.5/taxii2/api/"),
        refused_feed("API7: feed at another private range", "http://192.168.1.1/taxii2/api/"),
        refused_feed("API7: feed at IPv6 loopback", "http://[::1]/taxii2/api/"),
        refused_feed("API7: feed with a file URL", "file:///etc/passwd", 400),
        refused_feed("API7: feed with a gopher URL", "gopher://127.0.0.1:6379/_INFO", 400),
        request(
            "API7: no feed was stored",
            "GET",
            "/taxii/feeds",
            [
                status(200),
                expect(
                    "none of them",
                    'const name = "ssrf-" + pm.collectionVariables.get("runId");',
                    "pm.expect(pm.response.text()).to.not.include(name);",
                ),
            ],
        ),
    ],
)

API10 = folder(
    "API10 Unsafe Consumption of APIs",
    "Partner STIX and TAXII content is validated: what is not a bundle is refused, what "
    "does not map is reported, never stored silently.",
    [
        request(
            "API10: a STIX import that is not a bundle",
            "POST",
            "/stix/import",
            [problem(400)],
            auth="aliceToken",
            body={"type": "indicator", "id": "indicator--6f1d9c4e-2b7a-4c1e-9a53-0c7e1f3b8d21"},
        ),
        request(
            "API10: an unmappable pattern is reported",
            "POST",
            "/stix/import",
            [
                status(200),
                expect(
                    "nothing stored, the object reported",
                    "pm.expect(body.created + body.merged).to.eql(0);",
                    "pm.expect(body.unmapped.length).to.eql(1);",
                ),
            ],
            auth="aliceToken",
            body={
                "type": "bundle",
                "id": "bundle--7d1c2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
                "objects": [
                    {
                        "type": "indicator",
                        "spec_version": "2.1",
                        "id": "indicator--5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a",
                        "created": "2026-01-01T00:00:00.000Z",
                        "modified": "2026-01-01T00:00:00.000Z",
                        "pattern": "[process:name = 'evil.exe']",
                        "pattern_type": "stix",
                        "valid_from": "2026-01-01T00:00:00Z",
                    }
                ],
            },
        ),
        request(
            "API10: a malformed TAXII paging parameter is 400, not 500",
            "GET",
            "/taxii2/api/collections/{{owaspCollectionId}}/objects/?added_after=yesterday",
            [
                status(400),
                check("a TAXII error", 'pm.expect(pm.response.json().http_status).to.eql("400")'),
            ],
            headers={"Accept": TAXII},
        ),
        request(
            "API10: Sigma YAML with a Python tag is refused, not executed",
            "POST",
            "/rules",
            [problem(422)],
            auth="aliceToken",
            raw_body=(
                "title: !!python/object/apply:os.system ['id']\n"
                "logsource: {product: test}\n"
                "detection: {selection: {a: 1}, condition: selection}\n"
            ),
            headers={"Content-Type": "application/yaml"},
        ),
    ],
)

INJECTION = folder(
    "Injection (intelligence filters)",
    "SQL, LIKE wildcards and JSON operators in the IOC, rule and alert filters.",
    [
        request(
            "Injection: SQL in the IOC search",
            "GET",
            "/iocs?q=' OR 1=1 --",
            [
                status(200),
                check("no red IOC", 'pm.expect(pm.response.text()).to.not.include("insider-drop")'),
            ],
            auth="bobToken",
        ),
        request(
            "Injection: LIKE wildcard in the IOC source filter",
            "GET",
            "/iocs?source=%25",
            [
                status(200),
                expect("matches no source literally named %", "pm.expect(body.items).to.eql([]);"),
            ],
            auth="bobToken",
        ),
        request(
            "Injection: LIKE wildcards in the IOC search",
            "GET",
            "/iocs?q=%25_%25",
            [
                status(200),
                expect("matches no IOC literally holding %_%", "pm.expect(body.items).to.eql([]);"),
            ],
            auth="bobToken",
        ),
        request(
            "Injection: SQL in the IOC tag filter",
            "GET",
            "/iocs?tag=x' OR '1'='1",
            [status(200), expect("matches nothing", "pm.expect(body.items).to.eql([]);")],
            auth="bobToken",
        ),
        request(
            "Injection: SQL in the IOC type filter",
            "GET",
            "/iocs?type=ipv4' OR '1'='1",
            [problem(400)],
            auth="bobToken",
        ),
        request(
            "Injection: SQL in an IOC check",
            "GET",
            "/iocs/check?value=1.2.3.4' OR 1=1--",
            [problem(422)],
            auth="bobToken",
        ),
        request(
            "Injection: SQL in the rule kind filter",
            "GET",
            "/rules?kind=sigma' OR '1'='1",
            [problem(400)],
            auth="bobToken",
        ),
        request(
            "Injection: SQL in the alert status filter",
            "GET",
            "/alerts?status=open' OR '1'='1",
            [problem(400)],
            auth="bobToken",
        ),
        request(
            "Injection: SQL in a TAXII match filter",
            "GET",
            "/taxii2/api/collections/{{owaspCollectionId}}/objects/?match[id]=' OR 1=1--",
            [
                status(400),
                expect("refused as a malformed id", 'pm.expect(body.http_status).to.eql("400");'),
            ],
            headers={"Accept": TAXII},
        ),
    ],
)
