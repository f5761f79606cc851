"""MITRE ATT&CK techniques: checking the ids incidents and alerts carry, and the catalogue
they are checked against.

Lives here: the form of a technique id (``T1566``, ``T1059.001``), the check against the
loaded catalogue (only once one is loaded: an empty catalogue checks the form alone),
names and tactics for display, the techniques a Sigma rule's ``attack.tXXXX`` tags name,
and loading attack-patterns from MITRE's STIX bundle (``flask attack-load FILE``) or from
STIX objects that arrive by import or a TAXII feed. Nothing is downloaded at run time.
Not here: the table (:class:`models.AttackTechnique`), HTTP.
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import click
import stix2
from flask.cli import with_appcontext
from sqlalchemy import exists, select
from sqlalchemy.dialects.postgresql import insert

from models import AttackTechnique, db, utcnow
from security.errors import Invalid
from security.events import CLI, Actor, EventType, emit
from security.modules.lookup import first_or_404

TECHNIQUE_ID = re.compile(r"T\d{4}(?:\.\d{3})?")
"""An ATT&CK technique id: ``T`` and four digits, and a sub-technique's three."""
SIGMA_TAG = re.compile(r"attack\.(t\d{4}(?:\.\d{3})?)", re.IGNORECASE)
ATTACK_SOURCES = frozenset({"mitre-attack", "mitre-mobile-attack", "mitre-ics-attack"})
"""``external_references`` source names that carry an ATT&CK id."""
STIX_NAMESPACE = uuid.UUID("6f1b3e0e-8a55-4f7e-9d2b-1f0c0a7e4d21")
"""Names the attack-pattern of a technique the catalogue lacks, the same in every export."""


def canonical_techniques(values: Iterable[str]) -> list[str]:
    """The ids upper-cased, de-duplicated and sorted (the form is the schema's check)."""
    return sorted({value.strip().upper() for value in values})


def catalogue_loaded() -> bool:
    return bool(db.session.scalar(select(exists().select_from(AttackTechnique))))


def unknown_techniques(techniques: Iterable[str]) -> list[str]:
    """Those of ``techniques`` the loaded catalogue lacks; none while no catalogue is loaded."""
    wanted = sorted(set(techniques))
    if not wanted or not catalogue_loaded():
        return []
    known = set(
        db.session.scalars(select(AttackTechnique.id).where(AttackTechnique.id.in_(wanted)))
    )
    return [technique for technique in wanted if technique not in known]


def check_techniques(techniques: Iterable[str], field: str = "techniques") -> list[str]:
    """The canonical ids; :class:`Invalid` (422) naming any the loaded catalogue lacks."""
    canonical = canonical_techniques(techniques)
    unknown = unknown_techniques(canonical)
    if unknown:
        raise Invalid(
            "Unknown ATT&CK technique ids: " + ", ".join(unknown) + ".",
            errors={
                field: [
                    f"{technique} is not in the loaded ATT&CK catalogue" for technique in unknown
                ]
            },
        )
    return canonical


def get_technique(technique_id: str) -> AttackTechnique:
    """The catalogue's technique (the id in any case), or 404."""
    statement = select(AttackTechnique).where(AttackTechnique.id == technique_id.strip().upper())
    return first_or_404(statement, f"Technique {technique_id[:40]} is not in the catalogue.")


def technique_details(techniques: Sequence[str]) -> list[dict[str, Any]]:
    """Each id with its name and tactics from the catalogue (None and [] when unknown)."""
    if not techniques:
        return []
    rows = db.session.scalars(
        select(AttackTechnique).where(AttackTechnique.id.in_(list(techniques)))
    )
    known = {row.id: row for row in rows}
    return [
        {
            "id": technique,
            "name": known[technique].name if technique in known else None,
            "tactics": list(known[technique].tactics) if technique in known else [],
        }
        for technique in techniques
    ]


def attack_patterns(techniques: Sequence[str]) -> list[stix2.AttackPattern]:
    """STIX attack-patterns for the techniques: the catalogue's id, name and tactics when it
    has them, otherwise a stable id derived from the technique id and the id as name."""
    if not techniques:
        return []
    known = {
        row.id: row
        for row in db.session.scalars(
            select(AttackTechnique).where(AttackTechnique.id.in_(list(techniques)))
        )
    }
    patterns = []
    for technique in techniques:
        row = known.get(technique)
        stix_id = row.stix_id if row and row.stix_id.startswith("attack-pattern--") else None
        phases = [
            {"kill_chain_name": "mitre-attack", "phase_name": tactic}
            for tactic in (row.tactics if row else [])
        ]
        patterns.append(
            stix2.AttackPattern(
                id=stix_id or f"attack-pattern--{uuid.uuid5(STIX_NAMESPACE, technique)}",
                name=row.name if row else technique,
                external_references=[{"source_name": "mitre-attack", "external_id": technique}],
                kill_chain_phases=phases or None,
                allow_custom=False,
            )
        )
    return patterns


def techniques_in_tags(tags: Iterable[str]) -> list[str]:
    """The technique ids a Sigma rule's tags name (``attack.t1059.001`` -> ``T1059.001``);
    tactic tags (``attack.execution``) name none."""
    found = (SIGMA_TAG.fullmatch(tag.strip()) for tag in tags)
    return sorted({match.group(1).upper() for match in found if match})


# --- loading ------------------------------------------------------------------------------


def _technique_row(stix_object: Mapping[str, Any]) -> dict[str, Any] | None:
    """The catalogue row an attack-pattern describes, or None if it names no ATT&CK id."""
    if stix_object.get("type") != "attack-pattern":
        return None
    references = stix_object.get("external_references") or []
    ids = [
        str(reference.get("external_id", "")).upper()
        for reference in references
        if isinstance(reference, Mapping) and reference.get("source_name") in ATTACK_SOURCES
    ]
    technique = next((value for value in ids if TECHNIQUE_ID.fullmatch(value)), None)
    if technique is None or not isinstance(stix_object.get("name"), str):
        return None
    phases = stix_object.get("kill_chain_phases") or []
    tactics = sorted(
        {
            str(phase["phase_name"])
            for phase in phases
            if isinstance(phase, Mapping) and isinstance(phase.get("phase_name"), str)
        }
    )
    deprecated = bool(stix_object.get("x_mitre_deprecated") or stix_object.get("revoked"))
    return {
        "id": technique,
        "name": stix_object["name"][:200],
        "tactics": tactics,
        "stix_id": str(stix_object.get("id", ""))[:100],
        "deprecated": deprecated,
        "updated_at": utcnow(),
    }


def load_attack_patterns(objects: Iterable[Any], actor: Actor | None = None) -> dict[str, int]:
    """Add or refresh the catalogue from STIX objects (attack-patterns with an ATT&CK id;
    the rest is skipped); one event with the counts (``actor`` defaults to the request's
    principal). Returns ``{"loaded", "skipped"}``."""
    rows: dict[str, dict[str, Any]] = {}
    skipped = 0
    for stix_object in objects:
        row = _technique_row(stix_object) if isinstance(stix_object, Mapping) else None
        if row is None:
            skipped += 1
        else:
            rows[row["id"]] = row
    if rows:
        statement = insert(AttackTechnique).values(list(rows.values()))
        db.session.execute(
            statement.on_conflict_do_update(
                index_elements=[AttackTechnique.id],
                set_={
                    name: statement.excluded[name]
                    for name in ("name", "tactics", "stix_id", "deprecated", "updated_at")
                },
            )
        )
        emit(
            EventType.ATTACK_CATALOGUE_LOADED,
            None,
            {"techniques": len(rows)},
            actor=actor,
        )
    return {"loaded": len(rows), "skipped": skipped}


def load_bundle(bundle: Any, actor: Actor | None = None) -> dict[str, int]:
    """:func:`load_attack_patterns` of a STIX bundle (MITRE's enterprise-attack.json);
    :class:`Invalid` if it is not a bundle."""
    if not isinstance(bundle, Mapping) or not isinstance(bundle.get("objects"), list):
        raise Invalid("Not a STIX bundle: expected an object with an 'objects' list.")
    return load_attack_patterns(bundle["objects"], actor)


@click.command("attack-load")
@with_appcontext
@click.argument("bundle_file", type=click.File("rb"))
def attack_load_command(bundle_file: Any) -> None:
    """Load the ATT&CK catalogue from MITRE's STIX bundle (enterprise-attack.json, from
    github.com/mitre-attack/attack-stix-data); loading again refreshes it. Technique ids
    on incidents and alerts are then checked against it. Exit code 1: not a bundle."""
    try:
        loaded = load_bundle(json.load(bundle_file), actor=CLI)
    except (ValueError, Invalid) as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    db.session.commit()
    click.echo(f"loaded {loaded['loaded']} techniques ({loaded['skipped']} other objects skipped)")
