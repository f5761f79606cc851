"""Threat analysis on text: IOC extraction.

:func:`extract_iocs` is implemented in :mod:`security.modules.extraction` (with the rules
for what is and is not reported); it is re-exported here because this module is where
the package's public API has always offered it (ARCHITECTURE.md, "Areas").
"""

from security.modules.detection import create_threat_rule
from security.modules.extraction import extract_iocs

__all__ = ["create_threat_rule", "extract_iocs"]
