from django.urls import include, path

from tests import views

urlpatterns = [
    path("api/remote-first/", views.RemoteFirst.as_view()),
    path("api/simplejwt-first/", views.SimpleJWTFirst.as_view()),
    path("api/auth/verify", views.Pinned.as_view()),
    path("api/default/", views.Default.as_view()),
    path("", include("rozitech_remote_auth.urls")),
]
