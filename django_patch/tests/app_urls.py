"""A URLconf like the target app's: its own routes and a custom 404 handler, no metrics."""

from django.http import JsonResponse
from django.urls import path

from tests import views


def not_found(request, exception):
    return JsonResponse({"app": "404"}, status=404)


handler404 = not_found

urlpatterns = [
    path("api/auth/verify", views.Pinned.as_view()),
]
