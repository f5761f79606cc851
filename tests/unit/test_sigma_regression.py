"""Every SigmaHQ regression rule compiles and matches its own events (tests/data)."""

from pathlib import Path

import pytest
import yaml

from security.modules.sigma import compile_sigma_rule, evaluate

from .sigma_support import REGRESSION_DATA, load_events

# The regression data records a lower bound; these rules match more of their
# own events, each checked by hand:
EXTRA_MATCHES = {
    # user.conf is written three times (user.conf.new twice, user.conf~RF...TMP),
    # every one of them contains '\AppData\Roaming\AnyDesk\user.conf'.
    "file_event_win_anydesk_artefact": 3,
    # procdump.exe, procdump64.exe and procdump64a.exe are all dropped; each ends
    # with a listed name (their ':Zone.Identifier' streams correctly do not match).
    "file_event_win_cred_dump_tools_dropped_files": 3,
    # three ZoneMap\Domains values are set (http, https, *) to DWORD 2, none of
    # which is filtered (the filter lists zones 0 and 1 only).
    "registry_set_change_security_zones": 3,
}

# Rules whose regression data is a raw log line, not events: compiled only
# (the Cisco rule's keywords are tested on a hand-written line below).
RULES_WITHOUT_EVENTS = {"cisco_cli_dot1x_disabled"}

RULE_FOLDERS = sorted(path for path in REGRESSION_DATA.iterdir() if path.is_dir())


def _expected_matches(folder: Path) -> int:
    if folder.name in EXTRA_MATCHES:
        return EXTRA_MATCHES[folder.name]
    info = yaml.safe_load((folder / "info.yml").read_text(encoding="utf-8"))
    (test,) = info["regression_tests_info"]
    # a few info.yml files leave match_count out; SigmaHQ's default is one match
    return test.get("match_count", 1)


def test_regression_data_holds_all_rules():
    assert len(RULE_FOLDERS) == 102


@pytest.mark.parametrize(
    "folder",
    [folder for folder in RULE_FOLDERS if folder.name not in RULES_WITHOUT_EVENTS],
    ids=lambda folder: folder.name,
)
def test_rule_matches_its_own_events(folder):
    rule = compile_sigma_rule((folder / "rule.yml").read_text(encoding="utf-8"))
    events = [event for path in sorted(folder.glob("*.json")) for event in load_events(path)]

    matches = evaluate([rule], events)

    assert len(matches) == _expected_matches(folder)


def test_cisco_keyword_rule_matches_a_raw_configuration_line():
    rule = compile_sigma_rule(
        (REGRESSION_DATA / "cisco_cli_dot1x_disabled" / "rule.yml").read_text(encoding="utf-8")
    )

    assert rule.matches({"message": "switch(config-if)# no dot1x port-control auto"})
    assert not rule.matches({"message": "switch(config-if)# dot1x port-control auto"})


def test_all_regression_rules_together_find_each_rules_matches():
    folders = [folder for folder in RULE_FOLDERS if folder.name not in RULES_WITHOUT_EVENTS]
    rules = [compile_sigma_rule((f / "rule.yml").read_text(encoding="utf-8")) for f in folders]
    own_events = {
        index: [event for path in sorted(folder.glob("*.json")) for event in load_events(path)]
        for index, folder in enumerate(folders)
    }
    events = [event for index in own_events for event in own_events[index]]

    matched_rules = {match.rule_index for match in evaluate(rules, events)}

    assert matched_rules >= set(own_events)
