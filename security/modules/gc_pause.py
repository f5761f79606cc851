"""Pausing Python's cyclic garbage collector while a large batch is parsed and evaluated.

Decoding 5,000 JSON events and indexing them for the rules creates about a million
container objects in a second. Each of them survives the young generations, so the
collector keeps starting full collections that walk the whole heap (the app's own
objects included): measured, that made a ``POST /events`` of 5,000 two to three
times slower. Reference counting still frees everything that is not in a cycle while the
collector is paused; cycles wait until the pause ends, a second or so later.

The collector switch is process-wide, so concurrent pauses (gthread workers) are
counted: it is re-enabled when the last one ends, and only if it was enabled before.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_holders = 0
_was_enabled = False


@contextmanager
def garbage_collection_paused() -> Iterator[None]:
    """Run the block with the cyclic collector off (see the module docstring)."""
    global _holders, _was_enabled
    with _lock:
        if _holders == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _was_enabled:
                gc.enable()
