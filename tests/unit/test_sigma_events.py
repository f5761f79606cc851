"""How field names in Sigma rules find values in JSON events (security/modules/sigma/events.py)."""

from security.modules.sigma import events as sigma_events
from security.modules.sigma import flatten_event, flatten_events

from .sigma_support import sigma_rule

EVTX_EVENT = {
    "Event": {
        "#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"},
        "System": {
            "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon", "Guid": "5770"}},
            "EventID": {"#attributes": {"Qualifiers": 0}, "#text": 1},
            "Channel": "Microsoft-Windows-Sysmon/Operational",
            "Correlation": None,
        },
        "EventData": {
            "Image": "C:\\Windows\\System32\\cmd.exe",
            "Source Name": "Real-Time Protection",
            "ProcessId": 4242,
        },
    }
}


def _matches(selection, event=EVTX_EVENT):
    return sigma_rule({"selection": selection, "condition": "selection"}).matches(event)


def test_leaf_key_finds_nested_value():
    assert _matches({"Image|endswith": "\\cmd.exe"})


def test_dotted_path_finds_nested_value():
    assert _matches({"Event.EventData.Image|endswith": "\\cmd.exe"})


def test_dotted_path_must_be_the_real_path():
    assert not _matches({"Event.System.Image|endswith": "\\cmd.exe"})


def test_field_names_ignore_case():
    assert _matches({"image|endswith": "\\CMD.EXE"})


def test_field_names_ignore_spaces():
    assert _matches({"SourceName": "Real-Time Protection"})


def test_xml_text_member_is_the_value_of_its_key():
    assert _matches({"EventID": 1})


def test_xml_attribute_is_found_as_owner_underscore_name():
    assert _matches({"Provider_Name": "Microsoft-Windows-Sysmon"})


def test_xml_attribute_is_found_by_dotted_path():
    assert _matches({"Event.System.Provider.Name": "Microsoft-Windows-Sysmon"})


def test_json_null_is_a_null_field():
    assert _matches({"Correlation": None})


def test_number_field_matches_text_pattern():
    assert _matches({"ProcessId|startswith": "42"})


def test_list_of_objects_matches_when_any_element_does():
    event = {"processes": [{"name": "a.exe"}, {"name": "b.exe"}]}

    assert _matches({"processes.name": "b.exe"}, event)
    assert not _matches({"processes.name": "c.exe"}, event)


def test_list_of_scalars_matches_when_any_element_does():
    assert _matches({"tags": "beta"}, {"tags": ["alpha", "beta"]})


def test_all_modifier_may_be_satisfied_by_different_elements_of_a_list():
    assert _matches({"tags|all": ["alpha", "beta"]}, {"tags": ["alpha", "beta"]})


def test_top_level_key_with_dots_is_found_as_written():
    assert _matches({"source.ip|cidr": "10.0.0.0/8"}, {"source.ip": "10.1.1.1"})


def test_flattened_event_indexes_booleans_as_text():
    flat = flatten_event({"ok": True})

    assert flat.raw["ok"] == [True]
    assert flat.lowered["ok"] == ["true"]


def test_keys_that_python_deems_equal_stay_apart_across_a_batch():
    first, second, third = flatten_events([{1: "one"}, {True: "yes"}, {"1": "text"}], {"1", "true"})

    assert first.raw == {" ": [], "1": ["one"]}
    assert second.raw == {" ": [], "true": ["yes"]}
    assert third.raw == {" ": [], "1": ["text"]}


def test_single_events_share_slots_only_up_to_a_bound(monkeypatch):
    monkeypatch.setattr(sigma_events, "MAX_KEPT_BYTES", 20_000)
    monkeypatch.setattr(sigma_events._kept, "tree", None, raising=False)  # whatever ran before
    events = [{f"Key{number}": number, "Image": "C:\\x.exe"} for number in range(200)]
    kept = []  # (tree, the memory it holds) after each event

    for event in events:
        assert flatten_event(event).raw == flatten_events([event])[0].raw
        tree = sigma_events._kept.tree
        kept.append((id(tree), tree.bytes if tree else 0))

    assert len({tree for tree, _ in kept}) > 2  # dropped and started anew
    assert max(size for _, size in kept) <= 20_000
    assert kept[1] == (kept[0][0], kept[1][1])  # the next event reuses the tree


def test_flattening_a_deeply_nested_event_does_not_exhaust_the_stack():
    event = leaf = {}
    for _ in range(5000):
        leaf["n"] = {}
        leaf = leaf["n"]
    leaf["value"] = "deep"

    assert flatten_event(event).raw["value"] == ["deep"]


def test_flattening_deeply_nested_lists_does_not_exhaust_the_stack():
    event = {"values": ["deep"]}
    for _ in range(5000):
        event["values"] = [event["values"]]

    assert flatten_event(event).raw["values"] == ["deep"]


def test_event_that_is_a_scalar_is_searched_by_keywords_only():
    rule = sigma_rule({"keywords": ["error"], "condition": "keywords"})

    assert rule.matches("disk error on sda")
