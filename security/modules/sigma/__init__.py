"""In-process Sigma rule evaluation on JSON events (no database, no SIEM).

Rules are parsed with pySigma into typed detection items and a condition tree,
compiled once into a predicate (:func:`compile_sigma_rule`), and evaluated in
one pass over a batch of events (:func:`evaluate`). Anything the engine does
not evaluate is refused at compile time with :class:`SigmaRuleError`.

Modules: :mod:`.events` (field lookup), :mod:`.patterns` (wildcard strings),
:mod:`.values` (value semantics), :mod:`.conditions` (condition tree),
:mod:`.literal_index` (skipping the rules an event's literals rule out),
:mod:`.compiler` (parsing, rule object, batch evaluation).
"""

from .compiler import (
    SUPPORTED_MODIFIERS,
    CompiledSigmaRule,
    SigmaMatch,
    compile_sigma_rule,
    evaluate,
)
from .errors import SigmaRuleError
from .events import FlatEvent, flatten_event, flatten_events
from .literal_index import FieldLiteral, RequiredLiterals, RuleIndex

__all__ = [
    "SUPPORTED_MODIFIERS",
    "CompiledSigmaRule",
    "FieldLiteral",
    "FlatEvent",
    "RequiredLiterals",
    "RuleIndex",
    "SigmaMatch",
    "SigmaRuleError",
    "compile_sigma_rule",
    "evaluate",
    "flatten_event",
    "flatten_events",
]
