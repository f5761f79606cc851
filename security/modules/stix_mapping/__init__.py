"""STIX 2.1 mapping of IOCs, without a database: export to STIX objects and bundles, import back.

- :mod:`.export`: :class:`IndicatorRecord` -> indicator / vulnerability, bundles (no TLP red).
- :mod:`.importing`: bundle -> IOCs, with every object that did not map reported.
- :mod:`.patterns`: writing and reading STIX patterns.
- :mod:`.objects`: any STIX 2.1 object checked as a TAXII collection keeps it.
- :mod:`.tlp`: the OASIS TLP 2.0 marking definitions and the reverse lookup.

The TAXII server and client, and reading or writing the IOC store, live elsewhere.
"""

from security.modules.stix_mapping.export import (
    EXPORTABLE_IOC_TYPES,
    IndicatorRecord,
    TlpRedNotExportable,
    build_bundle,
    new_stix_id,
    stix_timestamp,
    to_stix,
)
from security.modules.stix_mapping.importing import (
    ImportedIoc,
    ImportResult,
    InvalidBundle,
    indicator_to_iocs,
    parse_bundle,
    vulnerability_to_ioc,
)
from security.modules.stix_mapping.objects import (
    InvalidStixObject,
    StixObjectFacts,
    stix_object_facts,
    tlp_markings_defined_in,
)
from security.modules.stix_mapping.patterns import UnmappablePattern, iocs_in_pattern, pattern_for
from security.modules.stix_mapping.tlp import (
    TLP_2_MARKINGS,
    TLP_LEVELS,
    tlp_marking,
    tlp_of_marking_definition,
    tlp_of_marking_refs,
)

__all__ = [
    "EXPORTABLE_IOC_TYPES",
    "TLP_2_MARKINGS",
    "TLP_LEVELS",
    "ImportResult",
    "ImportedIoc",
    "IndicatorRecord",
    "InvalidBundle",
    "InvalidStixObject",
    "StixObjectFacts",
    "TlpRedNotExportable",
    "UnmappablePattern",
    "build_bundle",
    "indicator_to_iocs",
    "iocs_in_pattern",
    "new_stix_id",
    "parse_bundle",
    "pattern_for",
    "stix_object_facts",
    "stix_timestamp",
    "tlp_marking",
    "tlp_markings_defined_in",
    "tlp_of_marking_definition",
    "tlp_of_marking_refs",
    "to_stix",
    "vulnerability_to_ioc",
]
