"""OWASP folder for identity: users, sessions and passwords under attack.

Runs after ``owasp_areas`` with ``owasp.py``'s users (alice and bob are analysts, vera a
viewer) and alice's API key, before the lockout and rate-limit folders. Every attack must
fail, and the checks after it show that nothing changed.
"""

from __future__ import annotations

from collection_builder import check, expect, folder, problem, request, save, status

ACCOUNT_FIELDS_NOBODY_SETS = {
    "username": "renamed",
    "password_hash": "$argon2id$forged",
    "mfa_secret": "JBSWY3DPEHPK3PXP",
    "must_change_password": False,
    "version": 99,
    "id": 1,
    "sso_subject": "forged",
}


def _me(name: str, token: str, variable: str) -> dict:
    return request(name, "GET", "/auth/me", [status(200), save(variable, "body.id")], auth=token)


IDENTITY = folder(
    "API1/API3/API5 Identity",
    "BOLA on /users/<id> and sessions, privilege escalation through PATCH /users, mass "
    "assignment of account fields, the last admin, the second-factor policy (only admins; "
    "an admin cannot lock their own role out), and second-factor management with an API "
    "key (alice's own, issued here).",
    [
        _me("Identity: alice's id", "aliceToken", "aliceId"),
        _me("Identity: bob's id", "bobToken", "bobId"),
        _me("Identity: admin's id", "adminToken", "adminId"),
        request(
            "Identity: alice's sessions",
            "GET",
            "/auth/sessions",
            [status(200), save("aliceSessionId", "body.items[0].id")],
            auth="aliceToken",
        ),
        request(
            "BOLA: bob reads alice's account",
            "GET",
            "/users/{{aliceId}}",
            [problem(403)],
            auth="bobToken",
        ),
        request("BOLA: bob lists users", "GET", "/users", [problem(403)], auth="bobToken"),
        request(
            "BOLA: bob ends alice's session",
            "DELETE",
            "/auth/sessions/{{aliceSessionId}}",
            [problem(404)],
            auth="bobToken",
        ),
        request(
            "BOLA: bob signs alice out everywhere",
            "DELETE",
            "/users/{{aliceId}}/sessions",
            [problem(403)],
            auth="bobToken",
        ),
        request(
            "BOLA: bob resets alice's password",
            "POST",
            "/users/{{aliceId}}/password-reset",
            [problem(403)],
            auth="bobToken",
            body={"mode": "token"},
        ),
        request(
            "BOLA: bob turns off alice's second factor",
            "DELETE",
            "/users/{{aliceId}}/mfa",
            [problem(403)],
            auth="bobToken",
        ),
        request(
            "BOLA: alice's session survived",
            "GET",
            "/auth/me",
            [status(200)],
            auth="aliceToken",
        ),
        request(
            "Escalation: bob makes himself admin",
            "PATCH",
            "/users/{{bobId}}",
            [problem(403)],
            auth="bobToken",
            body={"role": "admin"},
        ),
        request(
            "Escalation: vera deactivates alice",
            "PATCH",
            "/users/{{aliceId}}",
            [problem(403)],
            auth="veraToken",
            body={"is_active": False},
        ),
        request(
            "Escalation: bob is still an analyst",
            "GET",
            "/auth/me",
            [status(200), expect("analyst", 'pm.expect(body.role).to.eql("analyst");')],
            auth="bobToken",
        ),
        *(
            request(
                f"Mass assignment: admin cannot set {field}",
                "PATCH",
                "/users/{{aliceId}}",
                [problem(400)],
                body={field: value},
            )
            for field, value in ACCOUNT_FIELDS_NOBODY_SETS.items()
        ),
        request(
            "Mass assignment: register refuses is_active",
            "POST",
            "/auth/register",
            [problem(400)],
            body={
                "username": "sneaky_{{runId}}",
                "password": "{{userPassword}}",
                "role": "viewer",
                "is_active": False,
            },
        ),
        request(
            "Mass assignment: alice's account is unchanged",
            "GET",
            "/auth/me",
            [
                status(200),
                check(
                    "same name",
                    "pm.response.json().username === "
                    '"alice_" + pm.collectionVariables.get("runId")',
                ),
            ],
            auth="aliceToken",
        ),
        request(
            "Last admin: demoting the only admin is 409",
            "PATCH",
            "/users/{{adminId}}",
            [problem(409)],
            body={"role": "analyst"},
        ),
        request(
            "Last admin: deactivating the only admin is 409",
            "PATCH",
            "/users/{{adminId}}",
            [problem(409)],
            body={"is_active": False},
        ),
        request(
            "BOLA: bob reads the second-factor policy",
            "GET",
            "/auth/mfa-policy",
            [problem(403)],
            auth="bobToken",
        ),
        request(
            "Escalation: bob requires a second factor of admins",
            "PATCH",
            "/auth/mfa-policy",
            [problem(403)],
            auth="bobToken",
            body={"required_roles": ["admin"]},
        ),
        request(
            "Mass assignment: the policy's version is not settable",
            "PATCH",
            "/auth/mfa-policy",
            [problem(400)],
            body={"required_roles": [], "version": 99},
        ),
        request(
            "Lockout: an admin without a factor cannot require one of admins",
            "PATCH",
            "/auth/mfa-policy",
            [problem(409)],
            body={"required_roles": ["admin"]},
        ),
        request(
            "Lockout: the admin keeps every permission",
            "GET",
            "/users",
            [status(200)],
        ),
        request(
            "Identity: alice issues a key",
            "POST",
            "/api-keys",
            [status(201), save("aliceIdentityKey", "body.key")],
            auth="aliceToken",
            body={"name": "alice-identity-probe", "scopes": ["iocs:read"]},
        ),
        request(
            "API key cannot enrol a second factor",
            "POST",
            "/auth/mfa/enrol",
            [problem(403)],
            auth="aliceIdentityKey",
        ),
    ],
)
