"""Views shaped like the target app's (R3 in docs/architecture.md): defaults, both orders, and a pinned view."""

from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTAuthentication

from rozitech_remote_auth.authentication import RemoteJWTAuthentication


class WhoAmI(APIView):
    permission_classes = [IsAuthenticated]

    def get(self, request):
        user = request.user
        auth = request.auth
        return Response(
            {
                "pk": user.pk,
                "username": user.get_username(),
                "email": user.email,
                "first_name": user.first_name,
                "last_name": user.last_name,
                "auth": type(auth).__name__,
                "remote_id": getattr(auth, "id", None),
                "organization_id": getattr(auth, "organization_id", None),
            }
        )


class Default(WhoAmI):
    pass


class RemoteFirst(WhoAmI):
    authentication_classes = [RemoteJWTAuthentication, JWTAuthentication]


class SimpleJWTFirst(WhoAmI):
    authentication_classes = [JWTAuthentication, RemoteJWTAuthentication]


class Pinned(WhoAmI):
    """Like the app's GET /api/auth/verify: pins simplejwt only."""

    authentication_classes = [JWTAuthentication]
