"""The garbage-collector pause used while a batch of events is parsed and evaluated."""

import gc

from security.modules.gc_pause import garbage_collection_paused


def test_collector_is_off_inside_and_back_on_after():
    with garbage_collection_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_nested_pauses_reenable_only_when_the_last_ends():
    with garbage_collection_paused():
        with garbage_collection_paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled():
    gc.disable()
    try:
        with garbage_collection_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_collector_is_reenabled_when_the_block_raises():
    try:
        with garbage_collection_paused():
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert gc.isenabled()
