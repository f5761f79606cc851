"""STIX 2.1 and TAXII 2.1 exchange of the IOC store: the TAXII server, the TAXII client.

- :mod:`.server`: the server's backend (collections as filters over the IOC store, object
  paging, posted objects and their status); :mod:`.media` its wire format and
  :mod:`.authentication` its callers (bearer or HTTP Basic).
- :mod:`.collections` and :mod:`.feeds`: what admins define (served collections, polled
  feeds); :mod:`.client` polls feeds, through :mod:`security.outbound` (SSRF guard,
  checked HTTP session, feed credentials encrypted at rest).
- :mod:`.stix_exchange`: stored IOCs to STIX and parsed STIX into the store, shared by
  all of the above and by the STIX REST endpoints.

The STIX mapping itself (no database) is :mod:`security.modules.stix_mapping`; HTTP is
``resources/taxii.py`` and ``resources/stix.py``.
"""
