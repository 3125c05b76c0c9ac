"""Falcon (its WSGI ``falcon.App``), keeping the matrix's route contract
(``tests.matrix.scenarios``). Falcon has no file response with ``Range`` and no URL builder:
``/file`` answers ``Range`` by hand from ``req.range``, and ``/redirect`` builds its URL from
``req.root_path``, the way Falcon users do."""

from __future__ import annotations

import falcon

from tests.matrix import appkit


class Hello:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = "hello"

    on_head = on_get


class Echo:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        # req.stream, not req.bounded_stream: the latter reads nothing without Content-Length,
        # and the server (wsgi.input_terminated) ends the stream at the body's end.
        resp.content_type = "application/octet-stream"
        resp.data = req.stream.read()


class Stream:
    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        resp.content_type = falcon.MEDIA_TEXT
        resp.stream = appkit.gate_chunks(name)


class Endless:
    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        resp.content_type = falcon.MEDIA_TEXT
        resp.stream = appkit.endless_chunks(name)


class Info:
    def on_get(self, req: falcon.Request, resp: falcon.Response, rest: str) -> None:
        resp.media = {
            "path": req.path,
            "root": req.root_path,
            "query": {name: req.get_param_as_list(name) for name in req.params},
            "raw_query": req.query_string,
            "x_repeat": req.get_header("X-Repeat"),
        }


class Cookies:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_TEXT
        resp.set_cookie("a", "1", path="/", secure=False)
        resp.set_cookie("b", "2", path="/", secure=False)
        resp.text = "cookies"


class Status:
    def on_get(self, req: falcon.Request, resp: falcon.Response, code: int) -> None:
        resp.status = code


class Boom:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise RuntimeError("boom")


class Redirect:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise falcon.HTTPFound(f"{req.root_path}/hello")


class File:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        path = appkit.file_path()
        size = path.stat().st_size
        stream = path.open("rb")
        wanted = appkit.parse_range(req.get_header("Range"), size)
        resp.accept_ranges = "bytes"
        resp.content_type = "application/octet-stream"
        if wanted is None:
            resp.set_stream(stream, size)
            return
        start, stop = wanted
        stream.seek(start)
        resp.status = falcon.HTTP_206
        resp.content_range = (start, stop - 1, size)
        resp.set_stream(stream, stop - start)


app = falcon.App()
app.add_route("/hello", Hello())
app.add_route("/echo", Echo())
app.add_route("/stream/{name}", Stream())
app.add_route("/endless/{name}", Endless())
app.add_route("/info/{rest:path}", Info())
app.add_route("/cookies", Cookies())
app.add_route("/status/{code:int}", Status())
app.add_route("/boom", Boom())
app.add_route("/redirect", Redirect())
app.add_route("/file", File())

wsgi = app
