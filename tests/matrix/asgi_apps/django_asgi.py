"""Django's own ASGI handler (``get_asgi_application()``), settings made in code, keeping the
matrix's route contract (``tests.matrix.scenarios``). The views are ``async def``, so the
handler runs them on the request's loop; the streams are async iterators."""

from __future__ import annotations

import io

import django
from django.conf import settings
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.urls import path, reverse

from tests.matrix import appkit

settings.configure(
    DEBUG=False,
    SECRET_KEY="matrix-only",
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    DATA_UPLOAD_MAX_MEMORY_SIZE=None,  # /echo takes 5 MiB (Django refuses 2.5 MiB by default)
)
django.setup()

from django.core.asgi import get_asgi_application  # noqa: E402 (needs the settings above)


async def hello(request: HttpRequest) -> HttpResponseBase:
    return HttpResponse("hello", content_type="text/plain")


async def echo(request: HttpRequest) -> HttpResponseBase:
    return HttpResponse(request.body, content_type="application/octet-stream")


async def stream(request: HttpRequest, name: str) -> HttpResponseBase:
    return StreamingHttpResponse(appkit.async_gate_chunks(name))


async def endless(request: HttpRequest, name: str) -> HttpResponseBase:
    return StreamingHttpResponse(appkit.async_endless_chunks(name))


async def info(request: HttpRequest, rest: str) -> HttpResponseBase:
    return JsonResponse(
        {
            "path": request.path_info,
            "root": request.META["SCRIPT_NAME"],
            "query": dict(request.GET.lists()),
            # Django holds the query string as str decoded from UTF-8: these are its bytes.
            "raw_query": request.META["QUERY_STRING"].encode().decode("latin-1"),
            "x_repeat": request.headers.get("x-repeat", ""),
        }
    )


async def cookies(request: HttpRequest) -> HttpResponseBase:
    response = HttpResponse("cookies", content_type="text/plain")
    response.set_cookie("a", "1")
    response.set_cookie("b", "2")
    return response


async def status(request: HttpRequest, code: int) -> HttpResponseBase:
    return HttpResponse(status=code)


async def boom(request: HttpRequest) -> HttpResponseBase:
    raise RuntimeError("boom")


async def go(request: HttpRequest) -> HttpResponseBase:
    return HttpResponseRedirect(reverse("hello"))


async def file(request: HttpRequest) -> HttpResponseBase:
    """Django's FileResponse has no Range support: a range is served by hand, as its slice."""
    size = appkit.file_path().stat().st_size
    span = appkit.parse_range(request.headers.get("range"), size)
    if span is None:
        return FileResponse(appkit.file_path().open("rb"))
    start, stop = span
    with appkit.file_path().open("rb") as whole:
        whole.seek(start)
        part = io.BytesIO(whole.read(stop - start))
    response = FileResponse(part, status=206)
    response["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    return response


urlpatterns = [
    path("hello", hello, name="hello"),
    path("echo", echo),
    path("stream/<str:name>", stream),
    path("endless/<str:name>", endless),
    path("info/<path:rest>", info),
    path("cookies", cookies),
    path("status/<int:code>", status),
    path("boom", boom),
    path("redirect", go),
    path("file", file),
]

asgi = get_asgi_application()
