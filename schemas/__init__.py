"""marshmallow schemas: what a client may send (request validation) per area.

Schemas reject unknown fields (marshmallow's default ``RAISE``), which is what stops mass
assignment: a client can only set what a schema lists.
"""
