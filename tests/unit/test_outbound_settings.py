"""``OUTBOUND_ALLOWED_HOSTS``, and ``TAXII_ALLOWED_HOSTS`` still read as its older name."""

from __future__ import annotations

import pytest

from config import ConfigError, load_settings

BASE_ENV = {
    "DATABASE_URL": "postgresql+psycopg2://soc@127.0.0.1:1/soc",
    "SECRET_KEY": "a-strong-secret-key-for-the-settings-tests-0123456789",
}


def test_outbound_allowed_hosts_reach_the_app_config():
    settings = load_settings(env={**BASE_ENV, "OUTBOUND_ALLOWED_HOSTS": "127.0.0.1, 10.0.0.0/8"})

    assert settings.to_flask()["OUTBOUND_ALLOWED_HOSTS"] == ("127.0.0.1", "10.0.0.0/8")


def test_the_older_name_taxii_allowed_hosts_still_works():
    settings = load_settings(env={**BASE_ENV, "TAXII_ALLOWED_HOSTS": "Taxii.Internal.Example"})

    assert settings.outbound_allowed_hosts == ("taxii.internal.example",)


def test_both_names_together_allow_the_entries_of_each():
    env = {
        **BASE_ENV,
        "OUTBOUND_ALLOWED_HOSTS": "127.0.0.1",
        "TAXII_ALLOWED_HOSTS": "::1,127.0.0.1",
    }

    assert load_settings(env=env).outbound_allowed_hosts == ("127.0.0.1", "::1")


@pytest.mark.parametrize("name", ["OUTBOUND_ALLOWED_HOSTS", "TAXII_ALLOWED_HOSTS"])
def test_an_entry_that_is_no_host_is_refused_naming_its_setting(name):
    with pytest.raises(ConfigError, match=f"^{name}: 'not a host!'"):
        load_settings(env={**BASE_ENV, name: "not a host!"})
