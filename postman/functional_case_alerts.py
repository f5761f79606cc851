"""The functional collection's case-work folder (part A): a SIEM posts alerts (a resend
counts into the first), one observable lies inside a stored network and is flagged, the
analyst merges the alerts into an incident (carrying techniques and tags), unmerges one,
merges a duplicate incident, finds the related older incident, and reads an ATT&CK
technique the STIX import loaded."""

from __future__ import annotations

from collection_builder import expect, folder, json_body, number, problem, request, save, status

NETWORK = "198.18.{{runNumber}}.0/24"
SIEM_ALERT = {
    "source": "postman-siem",
    "source_ref": "notable-{{runId}}-1",
    "title": "Beaconing to a known C2 network",
    "severity": "high",
    "tags": ["c2"],
    "techniques": ["T1071.001"],
    "observables": [
        {"type": "ipv4", "value": "198.18.{{runNumber}}.77"},
        {"type": "hostname", "value": "ws-042.corp.example"},
    ],
    "raw": {"search_name": "C2 beacon"},
}
ATTACK_BUNDLE = {
    "type": "bundle",
    "id": "bundle--6b1f0e61-1d44-4c0a-9a55-0c8f3f6c1a01",
    "objects": [
        {
            "type": "attack-pattern",
            "spec_version": "2.1",
            "id": "attack-pattern--a62a8db3-f23a-4d8f-afd6-9dbc77e7813b",
            "created": "2020-03-02T18:45:07.892Z",
            "modified": "2023-10-01T02:28:45.147Z",
            "name": "Phishing",
            "external_references": [{"source_name": "mitre-attack", "external_id": "T1566"}],
            "kill_chain_phases": [
                {"kill_chain_name": "mitre-attack", "phase_name": "initial-access"}
            ],
        },
        {
            "type": "attack-pattern",
            "spec_version": "2.1",
            "id": "attack-pattern--be055942-6e63-49d7-9fa1-9cb7d8a8f3f4",
            "created": "2020-03-14T23:23:41.770Z",
            "modified": "2023-10-01T02:28:45.147Z",
            "name": "Web Protocols",
            "external_references": [{"source_name": "mitre-attack", "external_id": "T1071.001"}],
            "kill_chain_phases": [
                {"kill_chain_name": "mitre-attack", "phase_name": "command-and-control"}
            ],
        },
    ],
}
RUN_NUMBER = (
    "if (!pm.collectionVariables.get('runNumber')) {\n"
    "    pm.collectionVariables.set('runNumber', String(Math.floor(Math.random() * 250) + 1));\n"
    "}"
)


def _incident(name: str, variable: str, **fields) -> dict:
    return request(
        name,
        "POST",
        "/incidents",
        [status(201), save(variable, "body.id")],
        auth="analystToken",
        body={"severity": "medium", **fields},
    )


CASE_ALERTS = folder(
    "Case work: alerts from tools, merges, related incidents, ATT&CK",
    "A SIEM's alerts, resent and flagged by the IOC store; merged into an incident and out "
    "again; a duplicate merged; related incidents; the ATT&CK catalogue.",
    [
        request(
            "Case: load ATT&CK techniques by STIX import",
            "POST",
            "/stix/import",
            [status(200)],
            auth="analystToken",
            body=ATTACK_BUNDLE,
            prerequest=[RUN_NUMBER],
        ),
        request(
            "Case: read an ATT&CK technique",
            "GET",
            "/attack/techniques/T1566",
            [
                status(200),
                json_body("id", "name", "tactics"),
                expect("its name", 'pm.expect(body.name).to.eql("Phishing");'),
            ],
            auth="viewerToken",
        ),
        request(
            "Case: store a C2 network",
            "POST",
            "/iocs",
            [status(201), save("caseNetworkId", "body.id")],
            auth="analystToken",
            body={"type": "cidr", "value": NETWORK, "confidence": 90},
        ),
        _incident("Case: an older incident with the network", "caseOlderId", title="Old C2"),
        request(
            "Case: link the network to the older incident",
            "POST",
            "/incidents/{{caseOlderId}}/iocs",
            [status(200)],
            auth="analystToken",
            body={"ioc_ids": [number("caseNetworkId")]},
        ),
        request(
            "Case: a SIEM posts an alert",
            "POST",
            "/alerts",
            [
                status(201),
                json_body("id", "source", "source_ref", "observables", "technique_details"),
                expect(
                    "the address inside the stored network is flagged",
                    "const flagged = body.observables.filter((o) => o.known_bad);",
                    "pm.expect(flagged.length).to.eql(1);",
                    'const networkId = Number(pm.collectionVariables.get("caseNetworkId"));',
                    "pm.expect(flagged[0].ioc_ids).to.include(networkId);",
                ),
                save("caseAlertId", "body.id"),
            ],
            auth="analystToken",
            body=SIEM_ALERT,
        ),
        request(
            "Case: the SIEM resends the same alert",
            "POST",
            "/alerts",
            [
                status(200),
                expect("counted into the first", "pm.expect(body.count).to.eql(2);"),
            ],
            auth="analystToken",
            body=SIEM_ALERT,
        ),
        request(
            "Case: the SIEM posts a batch",
            "POST",
            "/alerts/bulk",
            [
                status(200),
                json_body("received", "created", "updated", "alerts"),
                save("caseSecondAlertId", "body.alerts[0].id"),
            ],
            auth="analystToken",
            body={
                "alerts": [
                    {**SIEM_ALERT, "source_ref": "notable-{{runId}}-2", "techniques": ["T1566"]}
                ]
            },
        ),
        request(
            "Case: an unknown technique is refused",
            "POST",
            "/alerts",
            [problem(422)],
            auth="analystToken",
            body={**SIEM_ALERT, "source_ref": "notable-{{runId}}-3", "techniques": ["T9999"]},
        ),
        _incident("Case: open an incident", "caseIncidentId", title="Beaconing case"),
        request(
            "Case: merge both alerts into the incident",
            "POST",
            "/incidents/{{caseIncidentId}}/alerts",
            [
                status(200),
                json_body("incident", "merged"),
                expect(
                    "techniques carried",
                    'pm.expect(body.incident.techniques).to.eql(["T1071.001", "T1566"]);',
                ),
            ],
            auth="analystToken",
            body={"alert_ids": [number("caseAlertId"), number("caseSecondAlertId")]},
        ),
        request(
            "Case: the incident's alerts",
            "GET",
            "/incidents/{{caseIncidentId}}/alerts",
            [status(200), expect("both", "pm.expect(body.items.length).to.eql(2);")],
            auth="viewerToken",
        ),
        request(
            "Case: alerts filtered by incident",
            "GET",
            "/alerts?incident_id={{caseIncidentId}}",
            [status(200), expect("both", "pm.expect(body.items.length).to.eql(2);")],
            auth="viewerToken",
        ),
        request(
            "Case: unmerge the batch alert",
            "DELETE",
            "/incidents/{{caseIncidentId}}/alerts/{{caseSecondAlertId}}",
            [
                status(200),
                expect(
                    "what it carried is removed",
                    'pm.expect(body.removed.techniques).to.eql(["T1566"]);',
                    "pm.expect(body.alert.incident_id).to.eql(null);",
                ),
            ],
            auth="analystToken",
        ),
        request(
            "Case: related finds the older incident",
            "GET",
            "/incidents/{{caseIncidentId}}/related",
            [
                status(200),
                expect(
                    "the older incident shares the network",
                    "const ids = body.items.map((item) => item.incident.id);",
                    'pm.expect(ids).to.include(pm.collectionVariables.get("caseOlderId") * 1);',
                ),
            ],
            auth="viewerToken",
        ),
        request(
            "Case: the network's incidents",
            "GET",
            "/iocs/{{caseNetworkId}}/incidents",
            [status(200), expect("two", "pm.expect(body.items.length).to.be.at.least(2);")],
            auth="viewerToken",
        ),
        _incident("Case: a duplicate incident", "caseDuplicateId", title="Same beacon"),
        request(
            "Case: merge the duplicate",
            "POST",
            "/incidents/{{caseIncidentId}}/merge",
            [
                status(200),
                json_body("incident", "duplicate", "moved"),
                expect(
                    "closed with a link",
                    'pm.expect(body.duplicate.status).to.eql("closed");',
                    "pm.expect(body.duplicate.merged_into_id).to.eql(body.incident.id);",
                ),
            ],
            auth="analystToken",
            body={"duplicate_id": number("caseDuplicateId")},
        ),
        request(
            "Case: incidents by technique",
            "GET",
            "/incidents?technique=T1071.001",
            [status(200), expect("found", "pm.expect(body.items.length).to.be.at.least(1);")],
            auth="viewerToken",
        ),
    ],
)
