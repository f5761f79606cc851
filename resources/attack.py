"""``/attack/techniques/<id>``: one technique of the loaded MITRE ATT&CK catalogue. The
catalogue is loaded with ``flask attack-load FILE`` (or arrives by STIX import or a TAXII
feed); :mod:`security.modules.attack` holds it and the checks it makes.
"""

from __future__ import annotations

from flask_restful import Resource

from auth import authorize
from resources.openapi import Operation
from resources.responding import respond
from schemas.attack import AttackTechniqueSchema
from security.modules import attack


class AttackTechniqueItem(Resource):
    openapi = {
        "get": Operation(
            "Read one ATT&CK technique of the loaded catalogue: name and tactics",
            permission="attack:read",
            responses={200: AttackTechniqueSchema},
            description="404 when no catalogue is loaded or it lacks the id.",
        )
    }

    def get(self, technique_id: str):
        authorize("attack:read")
        return respond(attack.get_technique(technique_id))


def register(api) -> None:
    api.add_resource(AttackTechniqueItem, "/attack/techniques/<string:technique_id>")
