"""rozitech-remote-auth: DRF authentication against the central Rozitech auth server.

Entry points: :mod:`.settings_overlay` (``DJANGO_SETTINGS_MODULE``),
:class:`.authentication.RemoteJWTAuthentication`, :mod:`.urls` (``metrics/``),
:mod:`.gunicorn_hooks`.  Importing this package has no side effects.
"""

__version__ = "0.1.0"
