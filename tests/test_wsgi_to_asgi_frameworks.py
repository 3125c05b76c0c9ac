"""WsgiToAsgi under real frameworks, in process: Flask through ``httpx.ASGITransport``, Flask
mounted under FastAPI at ``/legacy``, Django's ``WSGIHandler``, and test apps wrapped in
``wsgiref.validate.validator`` (its warnings are errors under this suite's ``filterwarnings``).

Where a2wsgi supports a feature it runs the same test; its known departures from PEP 3333 and
SPEC.md are ``xfail(strict=True)``, so a regression on either side shows.
"""

from __future__ import annotations

import asyncio
import gc
import io
import subprocess
import sys
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.validate import validator

import django
import httpx
import pytest
from django.conf import settings
from fastapi import FastAPI
from flask import Flask, Response, abort, redirect, request, send_file, url_for
from flask.typing import ResponseReturnValue

from bridge import WsgiToAsgi
from bridge.wsgi_to_asgi._response import FileWrapper
from tests import peers
from tests.asgi_harness import request as asgi_request
from tests.asgi_harness import run
from tests.peers import W2A, F
from tests.servers import ROOT

pytestmark = pytest.mark.timeout(20)

Environ = dict[str, Any]
Adapter = Callable[[Any], Any]


def over_peers(a2wsgi_fails: str | None = None) -> Callable[[F], F]:
    """Parametrize ``adapter`` over [bridge, a2wsgi] (tests/peers.py); ``a2wsgi_fails`` names
    a2wsgi's known departure."""
    broken = {} if a2wsgi_fails is None else {"a2wsgi": a2wsgi_fails}
    return peers.over_peers(W2A, argname="adapter", only=("bridge", "a2wsgi"), broken=broken)


def call(
    asgi_app: Any,
    method: str,
    url: str,
    *,
    raise_app_exceptions: bool = True,
    root_path: str = "",
    **kwargs: Any,
) -> httpx.Response:
    """One request through ``httpx.ASGITransport``, on a fresh event loop."""

    async def main() -> httpx.Response:
        transport = httpx.ASGITransport(
            app=asgi_app, raise_app_exceptions=raise_app_exceptions, root_path=root_path
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await asyncio.wait_for(client.request(method, url, **kwargs), 10)

    return asyncio.run(main())


# -- the Flask app ------------------------------------------------------------------------------

FILE = Path(__file__).resolve().parent / "test_wsgi_to_asgi_frameworks.py"  # any real file
flask_app = Flask(__name__)
closed_paths: list[str] = []  # request paths whose response iterable was closed


@flask_app.after_request
def record_close(response: Response) -> Response:
    path = request.path
    response.call_on_close(lambda: closed_paths.append(path))
    return response


@flask_app.get("/hello/<name>")
def hello(name: str) -> dict[str, str]:
    return {
        "hello": name,
        "path": request.path,
        "script_root": request.script_root,
        "url": url_for("hello", name=name),
        "external": url_for("hello", name=name, _external=True),
    }


@flask_app.get("/café")
def cafe() -> dict[str, str]:
    return {"route": "café", "path": request.path}


@flask_app.get("/query")
def query() -> dict[str, Any]:
    return {"args": request.args.to_dict(flat=False), "raw": request.query_string.decode()}


@flask_app.get("/headers")
def headers() -> dict[str, str | None]:
    return {name: request.headers.get(name) for name in ("X-Multi", "X-Spoof", "X_Spoof")}


@flask_app.post("/form")
def form() -> dict[str, Any]:
    files = {
        field: {
            "filename": upload.filename,
            "content_type": upload.content_type,
            "crc32": zlib.crc32(data := upload.read()),
            "size": len(data),
        }
        for field, upload in request.files.items()
    }
    return {"fields": request.form.to_dict(flat=False), "files": files}


@flask_app.post("/json")
def json_echo() -> dict[str, Any]:
    return {"got": request.get_json(), "mimetype": request.mimetype}


@flask_app.get("/cookies")
def cookies() -> dict[str, str]:
    return dict(request.cookies)


@flask_app.get("/set-cookies")
def set_cookies() -> Response:
    response = Response("set")
    response.set_cookie("first", "1")
    response.set_cookie("second", "2", httponly=True)
    return response


@flask_app.get("/go")
def go() -> ResponseReturnValue:
    return redirect(url_for("hello", name="redirected"))


@flask_app.get("/teapot")
def teapot() -> Response:
    abort(418)


@flask_app.get("/boom")
def boom() -> Response:
    raise RuntimeError("boom in a Flask view")


@flask_app.get("/stream-boom")
def stream_boom() -> Response:
    def chunks() -> Iterator[bytes]:
        yield b"the first part"
        raise RuntimeError("boom after the headers went out")

    return Response(chunks(), mimetype="text/plain")


@flask_app.get("/file")
def file() -> Response:
    return send_file(FILE, mimetype="application/x-test")


@flask_app.get("/<path:anything>")
def catch_all(anything: str) -> dict[str, str]:
    return {"catch_all": anything, "path": request.path, "script_root": request.script_root}


propagating_app = Flask("propagating")
propagating_app.config["PROPAGATE_EXCEPTIONS"] = True


@propagating_app.get("/boom")
def propagating_boom() -> str:
    raise RuntimeError("boom that Flask propagates")


# -- Flask through httpx.ASGITransport ----------------------------------------------------------


@over_peers()
def test_flask_route_and_unicode_path(adapter: Adapter) -> None:
    app = adapter(flask_app)
    hello_ = call(app, "GET", "/hello/café ☃")
    cafe_ = call(app, "GET", "/café")
    assert hello_.json() == {
        "hello": "café ☃",
        "path": "/hello/café ☃",
        "script_root": "",
        "url": "/hello/caf%C3%A9%20%E2%98%83",
        "external": "http://testserver/hello/caf%C3%A9%20%E2%98%83",
    }
    assert cafe_.json() == {"route": "café", "path": "/café"}


@over_peers()
def test_flask_query_string(adapter: Adapter) -> None:
    response = call(adapter(flask_app), "GET", "/query", params=[("q", "café"), ("q", "a&b")])
    assert response.json()["args"] == {"q": ["café", "a&b"]}
    assert response.json()["raw"] == "q=caf%C3%A9&q=a%26b"


@over_peers(a2wsgi_fails="a2wsgi decodes QUERY_STRING as ASCII: raw UTF-8 bytes raise")
def test_flask_query_string_with_raw_non_ascii_bytes(adapter: Adapter) -> None:
    # Browsers and curl may send raw bytes; httpx would percent-encode them, so drive the scope.
    result = run(asgi_request(adapter(flask_app), "/query", query_string="q=café".encode()))
    assert result.status == 200
    assert httpx.Response(200, content=result.body).json()["args"] == {"q": ["café"]}


@over_peers(a2wsgi_fails="a2wsgi joins repeated headers with ',' and passes underscore names")
def test_flask_repeated_headers_joined_and_underscore_names_dropped(adapter: Adapter) -> None:
    headers = [("X-Multi", "a"), ("X-Multi", "b"), ("X_Spoof", "evil")]
    response = call(adapter(flask_app), "GET", "/headers", headers=headers)
    assert response.json() == {"X-Multi": "a, b", "X-Spoof": None, "X_Spoof": None}


@over_peers()
def test_flask_urlencoded_form(adapter: Adapter) -> None:
    data = {"name": "café", "many": ["1", "2"]}
    response = call(adapter(flask_app), "POST", "/form", data=data)
    assert response.json() == {"fields": {"name": ["café"], "many": ["1", "2"]}, "files": {}}


@over_peers()
def test_flask_multipart_upload_streamed_in_many_messages(adapter: Adapter) -> None:
    # httpx renders a file part in 64 KiB pieces: the body arrives as many http.request messages.
    content = bytes(range(256)) * 4096 + b"tail"  # 1 MiB and a bit
    files = {"upload": ("café.bin", io.BytesIO(content), "application/x-test")}
    response = call(adapter(flask_app), "POST", "/form", data={"note": "hi"}, files=files)
    assert response.json() == {
        "fields": {"note": ["hi"]},
        "files": {
            "upload": {
                "filename": "café.bin",
                "content_type": "application/x-test",
                "crc32": zlib.crc32(content),
                "size": len(content),
            }
        },
    }


@over_peers()
def test_flask_json(adapter: Adapter) -> None:
    payload = {"name": "café ☃", "numbers": [1, 2.5, None], "nested": {"ok": True}}
    response = call(adapter(flask_app), "POST", "/json", json=payload)
    assert response.json() == {"got": payload, "mimetype": "application/json"}


@over_peers(a2wsgi_fails="a2wsgi joins repeated Cookie headers with ',' instead of '; '")
def test_flask_cookies_from_repeated_headers(adapter: Adapter) -> None:
    # HTTP/2 clients send one Cookie header per cookie; joined they must stay parseable.
    headers = [("Cookie", "a=1"), ("Cookie", "b=2; c=3")]
    response = call(adapter(flask_app), "GET", "/cookies", headers=headers)
    assert response.json() == {"a": "1", "b": "2", "c": "3"}


@over_peers()
def test_flask_sets_several_cookies(adapter: Adapter) -> None:
    response = call(adapter(flask_app), "GET", "/set-cookies")
    set_cookie = response.headers.get_list("set-cookie")
    assert len(set_cookie) == 2  # two headers, never folded into one
    assert set_cookie[0].startswith("first=1;")
    assert set_cookie[1].startswith("second=2;") and "HttpOnly" in set_cookie[1]


@over_peers()
def test_flask_redirect(adapter: Adapter) -> None:
    app = adapter(flask_app)
    response = call(app, "GET", "/go")
    assert response.status_code == 302
    assert response.headers["location"] == "/hello/redirected"
    followed = call(app, "GET", "/go", follow_redirects=True)
    assert followed.json()["hello"] == "redirected"


@over_peers()
def test_flask_error_pages(adapter: Adapter, caplog: pytest.LogCaptureFixture) -> None:
    app = adapter(flask_app)
    assert call(app, "GET", "/teapot").status_code == 418
    response = call(app, "GET", "/boom")  # Flask handles it: its own 500 page, logged
    assert response.status_code == 500
    assert "Internal Server Error" in response.text
    assert "boom in a Flask view" in caplog.text


@over_peers()
def test_flask_propagated_error_reaches_the_asgi_server(adapter: Adapter) -> None:
    app = adapter(propagating_app)
    with pytest.raises(RuntimeError, match="boom that Flask propagates"):
        call(app, "GET", "/boom")
    # A server (here httpx standing in for one) answers 500 for an error before the headers.
    assert call(app, "GET", "/boom", raise_app_exceptions=False).status_code == 500


@over_peers()
def test_flask_error_mid_stream_propagates_and_closes(adapter: Adapter) -> None:
    closed_paths.clear()
    with pytest.raises(RuntimeError, match="boom after the headers went out"):
        call(adapter(flask_app), "GET", "/stream-boom")
    assert closed_paths == ["/stream-boom"]


@over_peers()
def test_flask_response_is_closed(adapter: Adapter) -> None:
    closed_paths.clear()
    call(adapter(flask_app), "GET", "/hello/x")
    call(adapter(flask_app), "POST", "/json", json={})
    assert closed_paths == ["/hello/x", "/json"]


@over_peers()
def test_flask_send_file_through_the_file_wrapper(adapter: Adapter) -> None:
    app = adapter(flask_app)
    whole = call(app, "GET", "/file")
    head = call(app, "HEAD", "/file")
    content = FILE.read_bytes()
    assert whole.content == content
    assert whole.headers["content-length"] == str(len(content))
    assert (head.content, head.headers["content-length"]) == (b"", str(len(content)))


def test_flask_send_file_uses_pathsend_when_the_server_offers_it() -> None:
    app = WsgiToAsgi(flask_app)
    extensions: dict[str, Any] = {"http.response.pathsend": {}}
    whole = run(asgi_request(app, "/file", extensions=extensions))
    assert [m["type"] for m in whole.messages] == ["http.response.start", "http.response.pathsend"]
    assert whole.messages[1]["path"] == str(FILE)
    assert whole.header(b"content-length") == str(FILE.stat().st_size).encode()


# -- Flask mounted under FastAPI at /legacy -----------------------------------------------------


def mounted(adapter: Adapter) -> FastAPI:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"pong": True}

    app.mount("/legacy", adapter(flask_app))
    return app


@over_peers()
def test_mounted_flask_sees_the_prefix(adapter: Adapter) -> None:
    response = call(mounted(adapter), "GET", "/legacy/hello/café")
    assert response.json() == {
        "hello": "café",
        "path": "/hello/café",
        "script_root": "/legacy",
        "url": "/legacy/hello/caf%C3%A9",
        "external": "http://testserver/legacy/hello/caf%C3%A9",
    }


@over_peers()
def test_mounted_flask_redirects_within_the_prefix(adapter: Adapter) -> None:
    app = mounted(adapter)
    response = call(app, "GET", "/legacy/go")
    assert response.status_code == 302
    assert response.headers["location"] == "/legacy/hello/redirected"
    followed = call(app, "GET", "/legacy/go", follow_redirects=True)
    assert followed.json()["script_root"] == "/legacy"
    assert followed.json()["hello"] == "redirected"


@over_peers()
def test_mounted_flask_routing_stays_on_segment_boundaries(adapter: Adapter) -> None:
    app = mounted(adapter)
    inside = call(app, "GET", "/legacy/some/where")
    beside = call(app, "GET", "/legacyfoo")
    assert inside.json() == {
        "catch_all": "some/where",
        "path": "/some/where",
        "script_root": "/legacy",
    }
    assert beside.status_code == 404
    assert beside.json() == {"detail": "Not Found"}  # FastAPI's 404: Flask never saw it
    assert call(app, "GET", "/ping").json() == {"pong": True}


@over_peers()
def test_mounted_flask_reads_a_form(adapter: Adapter) -> None:
    response = call(mounted(adapter), "POST", "/legacy/form", data={"name": "café"})
    assert response.json() == {"fields": {"name": ["café"]}, "files": {}}


@over_peers(a2wsgi_fails="a2wsgi strips root_path as a string prefix: /legacyfoo becomes foo")
def test_root_path_not_on_a_segment_boundary_leaves_the_path_whole(adapter: Adapter) -> None:
    # A router that hands /legacyfoo to the app mounted at /legacy must not make it "foo".
    response = call(adapter(flask_app), "GET", "/legacyfoo", root_path="/legacy")
    assert response.json()["path"] == "/legacyfoo"


@over_peers()
def test_root_path_not_included_in_path(adapter: Adapter) -> None:
    # Older servers give path without the root_path; the split must work either way.
    result = run(asgi_request(adapter(flask_app), "/hello/x", root_path="/legacy"))
    got = httpx.Response(200, content=result.body).json()
    assert (got["script_root"], got["path"], got["url"]) == (
        "/legacy",
        "/hello/x",
        "/legacy/hello/x",
    )


# -- Django -------------------------------------------------------------------------------------

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bridge-tests-only",
        ALLOWED_HOSTS=["testserver"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
        TEMPLATES=[],
        USE_TZ=True,
    )
    django.setup()

from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.core.signals import request_finished  # noqa: E402
from django.http import (  # noqa: E402
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.test.utils import override_settings  # noqa: E402
from django.urls import path, reverse  # noqa: E402


def dj_hello(request: HttpRequest, name: str) -> JsonResponse:
    return JsonResponse(
        {
            "hello": name,
            "path": request.path,
            "path_info": request.path_info,
            "reverse": reverse("dj_hello", args=[name]),
            "cookies": request.COOKIES,
            "get": request.GET.dict(),
        }
    )


def dj_upload(request: HttpRequest) -> JsonResponse:
    files = {name: [f.name, f.size, zlib.crc32(f.read())] for name, f in request.FILES.items()}
    return JsonResponse({"post": request.POST.dict(), "files": files})


def dj_echo(request: HttpRequest) -> HttpResponse:
    return HttpResponse(request.body, content_type=request.content_type)


def dj_stream(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(
        (f"part {i}\n".encode() for i in range(5)), content_type="text/plain"
    )


def dj_boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom in a Django view")


urlpatterns = [
    path("hello/<str:name>", dj_hello, name="dj_hello"),
    path("upload", dj_upload),
    path("echo", dj_echo),
    path("stream", dj_stream),
    path("boom", dj_boom),
]


@pytest.fixture
def django_app() -> Iterator[WSGIHandler]:
    """Django's WSGI handler with this module's URLs, whoever configured the settings first."""
    with override_settings(
        ROOT_URLCONF=__name__, MIDDLEWARE=[], ALLOWED_HOSTS=["testserver"], DEBUG=False
    ):
        yield WSGIHandler()


@pytest.fixture
def finished() -> Iterator[list[str]]:
    """Threads whose Django request finished: the signal sent from the response's close()."""
    names: list[str] = []

    def receiver(**kwargs: Any) -> None:
        names.append(threading.current_thread().name)

    request_finished.connect(receiver)
    yield names
    request_finished.disconnect(receiver)


@over_peers()
def test_django_view_with_unicode_path_query_and_cookies(
    adapter: Adapter, django_app: WSGIHandler, finished: list[str]
) -> None:
    response = call(
        adapter(django_app), "GET", "/hello/café", params={"q": "ü"}, headers={"Cookie": "a=1"}
    )
    assert response.json() == {
        "hello": "café",
        "path": "/hello/café",
        "path_info": "/hello/café",
        "reverse": "/hello/caf%C3%A9",
        "cookies": {"a": "1"},
        "get": {"q": "ü"},
    }
    assert len(finished) == 1  # close() was called, so Django finished the request


@over_peers()
def test_django_mounted_reverses_with_the_prefix(adapter: Adapter, django_app: WSGIHandler) -> None:
    app = FastAPI()
    app.mount("/dj", adapter(django_app))
    got = call(app, "GET", "/dj/hello/café").json()
    assert (got["path"], got["path_info"], got["reverse"]) == (
        "/dj/hello/café",
        "/hello/café",
        "/dj/hello/caf%C3%A9",
    )


@over_peers()
def test_django_upload_and_echo(adapter: Adapter, django_app: WSGIHandler) -> None:
    app = adapter(django_app)
    content = bytes(range(256)) * 1024  # 256 KiB: several http.request messages
    files = {"doc": ("été.bin", io.BytesIO(content), "application/octet-stream")}
    uploaded = call(app, "POST", "/upload", data={"k": "v"}, files=files)
    assert uploaded.json() == {
        "post": {"k": "v"},
        "files": {"doc": ["été.bin", len(content), zlib.crc32(content)]},
    }
    echoed = call(app, "POST", "/echo", content=content, headers={"Content-Type": "x/y"})
    assert echoed.content == content
    assert echoed.headers["content-type"] == "x/y"


@over_peers()
def test_django_streaming_response_is_closed(
    adapter: Adapter, django_app: WSGIHandler, finished: list[str]
) -> None:
    response = call(adapter(django_app), "GET", "/stream")
    assert response.text == "".join(f"part {i}\n" for i in range(5))
    assert len(finished) == 1


@over_peers()
def test_django_error_is_its_own_500(adapter: Adapter, django_app: WSGIHandler) -> None:
    response = call(adapter(django_app), "GET", "/boom")
    assert response.status_code == 500
    assert "Server Error (500)" in response.text


# -- wsgiref.validate.validator around test apps ------------------------------------------------


def text_app(environ: Environ, start_response: Any) -> list[bytes]:
    body = f"{environ['REQUEST_METHOD']} {environ['SCRIPT_NAME']}|{environ['PATH_INFO']}"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body.encode("latin-1")]


def reading_app(environ: Environ, start_response: Any) -> list[bytes]:
    """Reads the body every way PEP 3333 allows, with the validator checking each call."""
    stream = environ["wsgi.input"]
    first = stream.readline()
    limited = stream.readline(4)
    some = stream.read(10)
    lines = stream.readlines()
    rest = b"".join(stream)  # iteration, after the end: nothing
    summary = b"|".join([first, limited, some, str(len(lines)).encode(), lines[-1], rest])
    environ["wsgi.errors"].write("read the body\n")
    environ["wsgi.errors"].flush()
    start_response("200 OK", [("Content-Type", environ.get("CONTENT_TYPE", "text/plain"))])
    return [summary]


def streaming_app(environ: Environ, start_response: Any) -> Iterator[bytes]:
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"written ")
    yield b""  # an empty chunk is allowed anywhere
    for i in range(3):
        yield f"chunk {i} ".encode()


@over_peers()
def test_validator_plain_app_with_root_path(adapter: Adapter) -> None:
    app = adapter(validator(text_app))
    assert call(app, "GET", "/a/b?x=1").text == "GET |/a/b"
    assert call(app, "HEAD", "/a").status_code == 200
    assert call(app, "GET", "/app/x", root_path="/app").text == "GET /app|/x"


@over_peers(a2wsgi_fails="a2wsgi strips a root_path of '/' from the path: PATH_INFO 'x'")
def test_validator_root_path_of_slash(adapter: Adapter) -> None:
    assert call(adapter(validator(text_app)), "GET", "/x", root_path="/").text == "GET |/x"


@over_peers(a2wsgi_fails="a2wsgi makes PATH_INFO 'foo' of /legacyfoo under /legacy")
def test_validator_path_info_starts_with_a_slash(adapter: Adapter) -> None:
    response = call(adapter(validator(text_app)), "GET", "/legacyfoo", root_path="/legacy")
    assert response.text == "GET /legacy|/legacyfoo"


@over_peers()
def test_validator_body_read_every_way(adapter: Adapter) -> None:
    body = b"first line\nsecond line\n" + b"".join(b"line %d\n" % i for i in range(5000))
    chunks = [body[i : i + 7000] for i in range(0, len(body), 7000)]  # several messages

    async def pieces() -> Any:
        for chunk in chunks:
            yield chunk

    response = call(
        adapter(validator(reading_app)),
        "POST",
        "/read",
        content=pieces(),
        headers={"Content-Type": "text/x-lines"},
    )
    assert response.headers["content-type"] == "text/x-lines"
    assert response.content == b"first line\n|seco|nd line\nli|5000|line 4999\n|"


@over_peers()
def test_validator_write_and_generator(adapter: Adapter) -> None:
    response = call(adapter(validator(streaming_app)), "GET", "/")
    assert response.text == "written chunk 0 chunk 1 chunk 2 "


@over_peers()
def test_validator_around_flask(adapter: Adapter) -> None:
    app = adapter(validator(flask_app))
    assert call(app, "GET", "/hello/café").json()["hello"] == "café"
    assert (
        call(app, "POST", "/form", files={"f": ("a.txt", b"abc")}).json()["files"]["f"]["size"] == 3
    )
    assert call(app, "GET", "/go").headers["location"] == "/hello/redirected"


@over_peers()
def test_validator_around_django(adapter: Adapter, django_app: WSGIHandler) -> None:
    app = adapter(validator(django_app))
    assert call(app, "GET", "/hello/x").json()["hello"] == "x"
    assert call(app, "POST", "/echo", content=b"abc").content == b"abc"


# -- found by this suite: wsgi.file_wrapper is its own iterator; Flask apps type-check --------


def test_closing_the_file_wrappers_iterator_closes_the_file() -> None:
    with FILE.open("rb") as file:
        iterator = iter(FileWrapper(file, 10))
        next(iterator)
        iterator.close()  # what Werkzeug's _RangeWrapper.close() does
        assert file.closed


def test_flask_send_file_range_request_closes_the_file() -> None:
    # Fails with "ResourceWarning: unclosed file" (pytest's unraisable-exception warning).
    response = call(WsgiToAsgi(flask_app), "GET", "/file", headers={"Range": "bytes=10-29"})
    gc.collect()  # the unclosed file's warning, inside this test
    assert (response.status_code, response.content) == (206, FILE.read_bytes()[10:30])
    assert response.headers["content-range"] == f"bytes 10-29/{FILE.stat().st_size}"


@pytest.mark.timeout(120)
def test_a_flask_app_type_checks_as_a_wsgi_app(tmp_path: Path) -> None:
    snippet = tmp_path / "typed.py"
    snippet.write_text(
        "from flask import Flask\nfrom bridge import WsgiToAsgi\n\n"
        "app = WsgiToAsgi(Flask(__name__))\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", str(snippet)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert result.returncode == 0, result.stdout
