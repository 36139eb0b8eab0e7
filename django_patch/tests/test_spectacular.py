"""drf-spectacular: the schema documents RemoteJWTAuthentication's bearer scheme, with no warning."""

from __future__ import annotations

import pytest

pytest.importorskip("drf_spectacular")

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.generators import SchemaGenerator

from rozitech_remote_auth.spectacular import RemoteJWTAuthenticationScheme

WARNING = "could not resolve authenticator"


@pytest.fixture
def spectacular(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    }
    return settings


def build(capsys) -> tuple[dict, str]:
    from drf_spectacular.drainage import GENERATOR_STATS

    GENERATOR_STATS.reset()
    schema = SchemaGenerator().get_schema(request=None, public=True)
    GENERATOR_STATS.emit_summary()
    out = capsys.readouterr()
    return schema, out.out + out.err


def test_extension_is_registered_by_the_app_config():
    assert RemoteJWTAuthenticationScheme in OpenApiAuthenticationExtension._registry


def test_schema_documents_the_bearer_scheme_without_a_warning(spectacular, capsys):
    schema, output = build(capsys)
    assert WARNING not in output
    assert schema["components"]["securitySchemes"]["remoteJwtAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": (
            "Access token of the Rozitech auth server, verified by the app against the auth server "
            "(GET /api/auth/me)."
        ),
    }
    # default view: both classes of DEFAULT_AUTHENTICATION_CLASSES, ours first
    security = schema["paths"]["/api/default/"]["get"]["security"]
    assert security[:2] == [{"remoteJwtAuth": []}, {"jwtAuth": []}]
    assert schema["paths"]["/api/remote-first/"]["get"]["security"][0] == {"remoteJwtAuth": []}


def test_without_the_extension_the_warning_is_back(spectacular, capsys, monkeypatch):
    """The control: the same build without the extension warns and documents no scheme of ours."""
    registry = [
        e
        for e in OpenApiAuthenticationExtension._registry
        if e is not RemoteJWTAuthenticationScheme
    ]
    monkeypatch.setattr(OpenApiAuthenticationExtension, "_registry", registry)
    schema, output = build(capsys)
    assert WARNING in output
    assert "remoteJwtAuth" not in schema["components"].get("securitySchemes", {})
