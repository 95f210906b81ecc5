"""Authentication, roles and OPD scopes, the audit log and personal-data rules of the API.

``principals`` defines the roles and the caller, and ``deps`` the FastAPI dependencies that
routers are included with. ``tokens`` and ``passwords`` make and check credentials, and
``identify`` and ``login`` check them against the registry, with ``lockout``. ``audit``,
``employees``, ``pseudonyms`` and ``retention`` handle personal data. ``api_tokens``,
``users_cli`` and ``bootstrap`` serve the command line and the first start. See
docs/security.md.
"""
