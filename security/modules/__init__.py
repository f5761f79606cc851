"""The engine's modules; import the public functions from :mod:`security` instead."""
