"""What FastAPI's two matrix apps share: the parts of a response that do not depend on whether
the endpoint is ``async def`` (run on the loop) or ``def`` (run on an anyio worker thread)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response


def info(request: Request) -> Response:
    query: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        query.setdefault(key, []).append(value)
    root = request.scope.get("root_path", "")
    return JSONResponse(
        {
            "path": request.url.path.removeprefix(root),
            "root": root,
            "query": query,
            "raw_query": request.scope["query_string"].decode("latin-1"),
            "x_repeat": ", ".join(request.headers.getlist("x-repeat")),
        }
    )


def cookies() -> Response:
    response = PlainTextResponse("cookies")
    response.set_cookie("a", "1")
    response.set_cookie("b", "2")
    return response


def redirect(request: Request) -> Response:
    return RedirectResponse(request.url_for("hello").path, status_code=302)


def app() -> FastAPI:
    """Production settings: no docs routes (they are not part of the contract)."""
    return FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
