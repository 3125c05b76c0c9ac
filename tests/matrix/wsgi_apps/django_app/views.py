"""The Django project's views: the matrix's contract, then the Django-only routes."""

from __future__ import annotations

import hashlib

from django import forms
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
    StreamingHttpResponse,
)
from django.middleware.csrf import get_token
from django.shortcuts import redirect
from django.utils.html import format_html
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from tests.matrix import appkit
from tests.matrix.wsgi_apps.django_app.models import Note


@require_http_methods(["GET", "HEAD"])
def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse("hello", content_type="text/plain")


@csrf_exempt
@require_POST
def echo(request: HttpRequest) -> HttpResponse:
    return HttpResponse(request.body, content_type="application/octet-stream")


@require_GET
def stream(request: HttpRequest, name: str) -> StreamingHttpResponse:
    return StreamingHttpResponse(appkit.gate_chunks(name), content_type="text/plain")


@require_GET
def endless(request: HttpRequest, name: str) -> StreamingHttpResponse:
    return StreamingHttpResponse(appkit.endless_chunks(name), content_type="text/plain")


@require_GET
def info(request: HttpRequest, rest: str) -> JsonResponse:
    return JsonResponse(
        {
            "path": request.path_info,
            "root": request.path.removesuffix(request.path_info),
            "query": dict(request.GET.lists()),
            "raw_query": request.META["QUERY_STRING"],
            "x_repeat": request.headers.get("X-Repeat"),
        }
    )


@require_GET
def cookies(request: HttpRequest) -> HttpResponse:
    response = HttpResponse("cookies", content_type="text/plain")
    response.set_cookie("a", "1")
    response.set_cookie("b", "2")
    return response


@require_GET
def status(request: HttpRequest, code: int) -> HttpResponse:
    return HttpResponse(status=code)


@require_GET
def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom")


@require_GET
def go(request: HttpRequest) -> HttpResponseBase:
    return redirect("hello")  # reverse() under the script prefix


@require_GET
def file(request: HttpRequest) -> FileResponse:
    """Django's FileResponse has no Range support: this is the recipe users write, a seek and
    the headers by hand. FileResponse still sends whole blocks (``block_size``) from the file's
    position, more than the Content-Length set here: the server side must stop at it."""
    path = appkit.file_path()
    size = path.stat().st_size
    wanted = appkit.parse_range(request.headers.get("Range"), size)
    handle = path.open("rb")
    if wanted is None:
        response = FileResponse(handle, content_type="application/octet-stream")
    else:
        start, stop = wanted
        handle.seek(start)
        response = FileResponse(handle, status=206, content_type="application/octet-stream")
        response["Content-Length"] = str(stop - start)
        response["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    response["Accept-Ranges"] = "bytes"
    return response


# -- Django only ---------------------------------------------------------------------------------


@csrf_exempt
@require_http_methods(["GET", "POST"])
def notes(request: HttpRequest) -> JsonResponse:
    """GET: every note's title, in order; POST ``title=...``: one more note (201)."""
    if request.method == "POST":
        note = Note.objects.create(title=request.POST["title"])
        return JsonResponse({"id": note.pk}, status=201)
    return JsonResponse(
        {"titles": list(Note.objects.order_by("pk").values_list("title", flat=True))}
    )


class NoteForm(forms.Form):
    title = forms.CharField(max_length=100)


@require_http_methods(["GET", "POST"])
def note_form(request: HttpRequest) -> HttpResponseBase:
    """The form behind CSRF: GET renders it with its token, a valid POST saves and redirects."""
    form = NoteForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        Note.objects.create(title=form.cleaned_data["title"])
        return redirect("notes")
    page = format_html(
        '<form method="post"><input type="hidden" name="csrfmiddlewaretoken" value="{}">{}</form>',
        get_token(request),
        form.as_div(),
    )
    return HttpResponse(page, status=400 if form.is_bound else 200)


@csrf_exempt
@require_POST
def upload(request: HttpRequest) -> JsonResponse:
    """A multipart upload: each file's name, size and SHA-256, and the plain fields."""
    files = {
        field: {
            "name": item.name,
            "size": item.size,
            "sha256": hashlib.sha256(b"".join(item.chunks())).hexdigest(),
        }
        for field, item in request.FILES.items()
    }
    return JsonResponse({"files": files, "fields": dict(request.POST.items())})
