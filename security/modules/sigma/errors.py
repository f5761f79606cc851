"""The one exception the Sigma engine raises for a rule it will not evaluate."""

from security.errors import Invalid


class SigmaRuleError(Invalid, ValueError):
    """A Sigma rule is malformed or uses something this engine does not evaluate.

    Raised at compile time only, so that an unsupported construct (a modifier,
    a correlation rule, an aggregation, a broken condition) is refused when the
    rule is created instead of being silently mis-evaluated on events later.
    The message names the offending construct.
    """
