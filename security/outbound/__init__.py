"""What every integration that talks to a remote server needs (TAXII feeds today; webhooks,
mail and identity providers later), kept out of any one integration:

- :mod:`.ssrf`: may the server send a request to this URL (``OUTBOUND_ALLOWED_HOSTS``)?
- :mod:`.http`: a ``requests`` session that checks every request and redirect against
  :mod:`.ssrf`, ignores the environment's proxies, and holds each request and each job
  to a deadline.
- :mod:`.secrets`: credentials for the remote server, encrypted at rest with
  ``ENCRYPTION_KEY`` (Fernet), and re-encrypted when the key is rotated.

What to fetch, and what the answers mean, stays with the integration.
"""
