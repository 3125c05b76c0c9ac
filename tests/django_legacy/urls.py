from django.contrib import admin
from django.urls import path

from . import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("barrier/<int:parties>/<str:round>/", views.barrier, name="barrier"),
    path("whoami/", views.whoami, name="whoami"),
    path("stream/<str:key>/", views.stream, name="stream"),
    path("release/<str:key>/", views.release, name="release"),
    path("notes/", views.notes, name="notes"),
    path("finished/<int:at_least>/", views.finished, name="finished"),
    path("go/", views.go, name="go"),
    path("target/", views.target, name="target"),
    path("form/", views.form, name="form"),
]
