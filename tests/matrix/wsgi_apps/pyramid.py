"""Pyramid (a ``Configurator`` app), keeping the matrix's route contract
(``tests.matrix.scenarios``)."""

from __future__ import annotations

from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPFound
from pyramid.request import Request
from pyramid.response import FileResponse, Response

from tests.matrix import appkit


def hello(request: Request) -> Response:
    return Response("hello", content_type="text/plain")


def echo(request: Request) -> Response:
    return Response(request.body, content_type="application/octet-stream")


def stream(request: Request) -> Response:
    name = request.matchdict["name"]
    return Response(app_iter=appkit.gate_chunks(name), content_type="text/plain")


def endless(request: Request) -> Response:
    name = request.matchdict["name"]
    return Response(app_iter=appkit.endless_chunks(name), content_type="text/plain")


def info(request: Request) -> dict[str, object]:
    return {
        "path": request.path_info,
        "root": request.script_name,
        "query": request.GET.dict_of_lists(),
        "raw_query": request.query_string,
        "x_repeat": request.headers.get("X-Repeat"),
    }


def cookies(request: Request) -> Response:
    response = Response("cookies", content_type="text/plain")
    response.set_cookie("a", "1", path="/")
    response.set_cookie("b", "2", path="/")
    return response


def status(request: Request) -> Response:
    return Response(status=int(request.matchdict["code"]))


def boom(request: Request) -> Response:
    raise RuntimeError("boom")


def go(request: Request) -> HTTPFound:
    return HTTPFound(location=request.route_url("hello"))


def file(request: Request) -> FileResponse:
    return FileResponse(str(appkit.file_path()), request=request)


def make_app() -> object:
    with Configurator() as config:
        routes = {
            "hello": ("/hello", hello, ("GET", "HEAD")),
            "echo": ("/echo", echo, "POST"),
            "stream": ("/stream/{name}", stream, "GET"),
            "endless": ("/endless/{name}", endless, "GET"),
            "info": ("/info/*rest", info, "GET"),
            "cookies": ("/cookies", cookies, "GET"),
            "status": (r"/status/{code:\d+}", status, "GET"),
            "boom": ("/boom", boom, "GET"),
            "redirect": ("/redirect", go, "GET"),
            "file": ("/file", file, "GET"),
        }
        for name, (pattern, view, methods) in routes.items():
            config.add_route(name, pattern)
            renderer = "json" if view is info else None
            config.add_view(view, route_name=name, request_method=methods, renderer=renderer)
        return config.make_wsgi_app()


wsgi = make_app()
