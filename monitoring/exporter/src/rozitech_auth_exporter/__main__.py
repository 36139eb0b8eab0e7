"""``python -m rozitech_auth_exporter``: same as the ``rozitech-auth-exporter`` command."""

from rozitech_auth_exporter.cli import main

raise SystemExit(main())
