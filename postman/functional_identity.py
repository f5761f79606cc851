"""The functional collection's identity folder: the users list and an admin's edit, a
user's sessions and password, an admin's reset and sign-out, the second factor's
endpoints, and a deactivation that ends the user's token at once.

It registers its own user (``leaver_<runId>``), so the analyst and viewer of the other
folders keep working. Enrolment stops short of a TOTP code (the collection has no
authenticator): confirming with a wrong code is 422, and the admin clears the pending
enrolment. The second-factor policy requires a factor of analysts, which takes the
leaver's session down to its own account until it is lifted again. Single sign-on needs
a configured provider; without one its two endpoints answer 404, which is what a run on
the local server checks.
"""

from __future__ import annotations

from collection_builder import (
    USER_PASSWORD,
    expect,
    folder,
    header,
    json_body,
    login,
    problem,
    request,
    save,
    status,
)

# A revocation reaches every worker within auth.VERIFIED_TOKEN_SECONDS (0.5 s).
PAST_THE_CACHE = ["setTimeout(() => {}, 600);"]
NEW_PASSWORD = "Quartz-Meadow-71!"  # noqa: S105 - the test user's next password
RESET_PASSWORD = "Lantern-Basalt-83?"  # noqa: S105 - set with the reset token
USER_FIELDS = ("id", "username", "role", "is_active", "version", "mfa_enabled", "sso")

IDENTITY = folder(
    "Identity",
    "Users (admin), sessions, passwords, resets, the second factor, deactivation.",
    [
        request(
            "Register a user who will leave",
            "POST",
            "/auth/register",
            [status(201), save("leaverId", "body.id")],
            body={"username": "leaver_{{runId}}", "password": USER_PASSWORD, "role": "analyst"},
        ),
        request(
            "The created user's Location resolves",
            "GET",
            "/users/{{leaverId}}",
            [status(200), json_body(*USER_FIELDS), header("ETag", '^"1"$')],
        ),
        request(
            "List analysts",
            "GET",
            "/users?role=analyst&active=true&limit=50",
            [
                status(200),
                json_body("items", "next_cursor"),
                expect(
                    "only active analysts",
                    "pm.expect(body.items.length).to.be.above(0);",
                    'body.items.forEach((user) => pm.expect(user.role).to.eql("analyst"));',
                ),
            ],
        ),
        request(
            "Edit a user's display name with If-Match",
            "PATCH",
            "/users/{{leaverId}}",
            [
                status(200),
                header("ETag", '^"2"$'),
                expect("renamed", 'pm.expect(body.display_name).to.eql("Lee Leaver");'),
            ],
            headers={"If-Match": '"1"'},
            body={"display_name": "Lee Leaver", "email": "lee@example.org"},
        ),
        request(
            "Edit with a stale If-Match is 412",
            "PATCH",
            "/users/{{leaverId}}",
            [problem(412)],
            headers={"If-Match": '"1"'},
            body={"display_name": "Stale"},
        ),
        login("Login leaver", "leaver_{{runId}}", "{{userPassword}}", "leaverToken"),
        login("Login leaver again", "leaver_{{runId}}", "{{userPassword}}", "leaverToken2"),
        request(
            "List own sessions",
            "GET",
            "/auth/sessions",
            [
                status(200),
                json_body("items", "next_cursor"),
                expect(
                    "two sessions, this one marked",
                    "pm.expect(body.items.length).to.eql(2);",
                    "pm.expect(body.items.filter((s) => s.current).length).to.eql(1);",
                    'pm.expect(body.items[0]).to.have.property("user_agent");',
                ),
                save("leaverOtherSession", "body.items.find((s) => !s.current).id"),
            ],
            auth="leaverToken",
        ),
        request(
            "End the other session",
            "DELETE",
            "/auth/sessions/{{leaverOtherSession}}",
            [status(204)],
            auth="leaverToken",
        ),
        request(
            "Ended session is 401",
            "GET",
            "/auth/me",
            [problem(401)],
            auth="leaverToken2",
            prerequest=PAST_THE_CACHE,
        ),
        request(
            "Change own password",
            "POST",
            "/auth/password",
            [status(204)],
            auth="leaverToken",
            body={"current_password": "{{userPassword}}", "new_password": NEW_PASSWORD},
        ),
        request(
            "A common breached password is refused",
            "POST",
            "/auth/password",
            [
                problem(422),
                expect(
                    "names the rule",
                    'pm.expect(body.errors.password).to.include("must not be a commonly used'
                    ' password");',
                ),
            ],
            auth="leaverToken",
            body={"current_password": NEW_PASSWORD, "new_password": "Mega_Pizdetz666"},
        ),
        request(
            "Start enrolling a second factor",
            "POST",
            "/auth/mfa/enrol",
            [
                status(200),
                json_body("otpauth_uri", "secret"),
                expect(
                    "a TOTP URI", "pm.expect(body.otpauth_uri).to.match(/^otpauth:\\/\\/totp\\//);"
                ),
            ],
            auth="leaverToken",
        ),
        request(
            "Confirming with a wrong code is 422",
            "POST",
            "/auth/mfa/confirm",
            [problem(422)],
            auth="leaverToken",
            body={"code": "000000"},
        ),
        request(
            "Disabling a factor that is not on is 409",
            "POST",
            "/auth/mfa/disable",
            [problem(409)],
            auth="leaverToken",
            body={"code": "000000"},
        ),
        request(
            "A made-up login challenge is 401",
            "POST",
            "/auth/mfa",
            [problem(401)],
            auth=None,
            body={"challenge": "smc_not-a-challenge", "code": "000000"},
        ),
        request(
            "Read the second-factor policy",
            "GET",
            "/auth/mfa-policy",
            [
                status(200),
                json_body("required_roles", "version", "updated_at", "updated_by"),
                header("ETag", '^"[0-9]+"$'),
                save("mfaPolicyVersion", "body.version"),
            ],
        ),
        request(
            "Require a second factor of analysts",
            "PATCH",
            "/auth/mfa-policy",
            [
                status(200),
                expect("analysts", 'pm.expect(body.required_roles).to.eql(["analyst"]);'),
                save("mfaPolicyVersion", "body.version"),
            ],
            headers={"If-Match": '"{{mfaPolicyVersion}}"'},
            body={"required_roles": ["analyst"]},
        ),
        request(
            "An analyst without a factor is refused on the next request",
            "GET",
            "/incidents",
            [problem(403)],
            auth="leaverToken",
            prerequest=PAST_THE_CACHE,
        ),
        request(
            "Their session still reads its own account, with no permissions",
            "GET",
            "/auth/me",
            [status(200), expect("none", "pm.expect(body.permissions).to.eql([]);")],
            auth="leaverToken",
        ),
        request(
            "Lift the requirement",
            "PATCH",
            "/auth/mfa-policy",
            [status(200), expect("none", "pm.expect(body.required_roles).to.eql([]);")],
            headers={"If-Match": '"{{mfaPolicyVersion}}"'},
            body={"required_roles": []},
        ),
        request(
            "The analyst's access is back",
            "GET",
            "/incidents",
            [status(200)],
            auth="leaverToken",
            prerequest=PAST_THE_CACHE,
        ),
        request(
            "Admin clears the pending second factor",
            "DELETE",
            "/users/{{leaverId}}/mfa",
            [status(204)],
        ),
        request(
            "Admin issues a password reset token",
            "POST",
            "/users/{{leaverId}}/password-reset",
            [
                status(200),
                json_body("user_id", "mode", "reset_token", "expires_at"),
                save("leaverResetToken", "body.reset_token"),
            ],
            body={"mode": "token"},
        ),
        request(
            "The reset ended the sessions",
            "GET",
            "/auth/me",
            [problem(401)],
            auth="leaverToken",
            prerequest=PAST_THE_CACHE,
        ),
        request(
            "Spend the reset token",
            "POST",
            "/auth/password/reset",
            [status(204)],
            auth=None,
            body={"reset_token": "{{leaverResetToken}}", "new_password": RESET_PASSWORD},
        ),
        request(
            "A spent reset token is 401",
            "POST",
            "/auth/password/reset",
            [problem(401)],
            auth=None,
            body={"reset_token": "{{leaverResetToken}}", "new_password": "Other-Basalt-84?"},
        ),
        login("Login with the new password", "leaver_{{runId}}", RESET_PASSWORD, "leaverToken"),
        request(
            "Admin signs the user out everywhere",
            "DELETE",
            "/users/{{leaverId}}/sessions",
            [status(200), json_body("revoked")],
        ),
        login("Login leaver once more", "leaver_{{runId}}", RESET_PASSWORD, "leaverToken"),
        request(
            "Deactivate the user",
            "PATCH",
            "/users/{{leaverId}}",
            [status(200), expect("inactive", "pm.expect(body.is_active).to.eql(false);")],
            body={"is_active": False},
        ),
        request(
            "A deactivated user's token is 401",
            "GET",
            "/auth/me",
            [problem(401)],
            auth="leaverToken",
            prerequest=PAST_THE_CACHE,
        ),
        request(
            "Single sign-on without a provider is 404",
            "GET",
            "/auth/oidc/login",
            [problem(404)],
            auth=None,
        ),
        request(
            "Single sign-on callback without a provider is 404",
            "GET",
            "/auth/oidc/callback?code=unused&state=unused",
            [problem(404)],
            auth=None,
        ),
    ],
)
