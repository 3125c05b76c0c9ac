"""The Django project's URLconf: the matrix's contract, then the Django-only routes."""

from __future__ import annotations

from django.urls import path, re_path

from tests.matrix.wsgi_apps.django_app import views

urlpatterns = [
    path("hello", views.hello, name="hello"),
    path("echo", views.echo),
    path("stream/<str:name>", views.stream),
    path("endless/<str:name>", views.endless),
    re_path(r"^info/(?P<rest>.*)$", views.info),
    path("cookies", views.cookies),
    path("status/<int:code>", views.status),
    path("boom", views.boom),
    path("redirect", views.go),
    path("file", views.file),
    # Django only (tests/test_matrix_django.py)
    path("notes", views.notes, name="notes"),
    path("form", views.note_form),
    path("upload", views.upload),
]
