"""Django and FastAPI in one process (issue 7): a Django project (``tests/django_legacy``: a
model and its migration on SQLite, admin, auth, sessions, CSRF) mounted under FastAPI at
``/legacy`` through ``WsgiToAsgi`` (``tests/apps_django_fastapi.py``), served by a real uvicorn.

What a migration relies on, each a test that a wrong adapter fails:
- sync views run on several threads at once: N requests meet at a ``threading.Barrier(N)``
  inside the view, which an adapter that serialises them breaks (asgiref's ``WsgiToAsgi``
  does; Django's own ASGI handler does not, though it starts a thread per request);
- the ORM under concurrent writes: every row lands (SQLite in WAL mode, IMMEDIATE
  transactions, a busy timeout, so writers queue instead of failing);
- the iterable's ``close()`` fires ``request_finished``, which closes the thread's database
  connection (``CONN_MAX_AGE = 0``): a mount that never calls ``close()`` fails it;
- ``reverse()``, redirects, the admin's links and static URLs carry ``/legacy``
  (``SCRIPT_NAME``); a CSRF-protected form POST and the admin login work through the mount;
  FastAPI's own routes are served beside it.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.servers import ROOT, Server, serve

pytestmark = [pytest.mark.server, pytest.mark.timeout(60)]

HOST = "127.0.0.1"
THREADS = 8  # tests/apps_django_fastapi.py's WsgiToAsgi(threads=8)
UVICORN = ["uvicorn", "tests.apps_django_fastapi:app", "--host", HOST, "--port", "{port}"]
UVICORN += ["--no-access-log", "--timeout-graceful-shutdown", "2"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"BRIDGE_DJANGO_DB": str(tmp_path_factory.mktemp("django") / "legacy.sqlite3")}
    migrate = [sys.executable, "-m", "tests.django_legacy.migrate"]
    done = subprocess.run(
        migrate, cwd=ROOT, env={**_environ(), **env}, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    with serve(UVICORN, env=env, timeout=30) as running:
        yield running


def _environ() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def at_once(count: int, call: object) -> list[httpx.Response]:
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        return list(pool.map(call, range(count)))  # type: ignore[arg-type]


# -- threads ---------------------------------------------------------------------------------

ASGIREF_SERIALISES = pytest.mark.xfail(
    strict=True, reason="asgiref's WsgiToAsgi runs every WSGI call on one thread"
)


@pytest.mark.parametrize(
    ("mount", "wait"),
    [
        ("legacy", 20),
        ("asgi-legacy", 20),
        pytest.param("asgiref-legacy", 1.5, marks=ASGIREF_SERIALISES),
    ],
)
def test_concurrent_sync_views_run_on_several_threads_at_once(
    server: Server, mount: str, wait: float
) -> None:
    """Six requests each wait in the view for all six: only six threads at once get past."""
    parties, round_ = 6, uuid.uuid4().hex
    url = f"{server.url}/{mount}/barrier/{parties}/{round_}/?timeout={wait}"
    responses = at_once(parties, lambda _: httpx.get(url, timeout=60))
    assert [r.status_code for r in responses] == [200] * parties, responses[0].text
    assert len({r.json()["thread"] for r in responses}) == parties


def test_bridge_reuses_its_threads_where_djangos_asgi_handler_starts_one_a_request(
    client: httpx.Client,
) -> None:
    """What the recipe says about threads: bridge's pool is bounded (``threads``) and reused;
    Django's ASGI handler runs each request's sync code on a thread of its own, new each time
    (a one-thread executor per request, asgiref's ``ThreadSensitiveContext``)."""
    ours = {client.get("/legacy/whoami/").json()["thread"] for _ in range(20)}
    djangos = {client.get("/asgi-legacy/whoami/").json()["thread"] for _ in range(20)}
    assert 1 <= len(ours) <= THREADS
    assert len(djangos) == 20


@pytest.mark.parametrize(
    ("mount", "wait"),
    [
        ("legacy", 20),
        pytest.param(
            "asgi-legacy",
            1.5,
            marks=pytest.mark.xfail(
                strict=True,
                reason="Django's ASGI handler reads a sync StreamingHttpResponse whole first",
            ),
        ),
    ],
)
def test_a_sync_streaming_response_streams(server: Server, mount: str, wait: float) -> None:
    """The view yields its second chunk only once the client, holding the first, asks for it
    on another request: a response buffered before it is sent times that wait out."""
    key = uuid.uuid4().hex
    with (
        httpx.Client(base_url=f"{server.url}/{mount}", timeout=30) as http,
        http.stream("GET", f"/stream/{key}/?timeout={wait}") as response,
    ):
        chunks = response.iter_raw()
        received = next(chunks)
        assert received == b"first\n"
        assert http.get(f"/release/{key}/").status_code == 200
        assert received + b"".join(chunks) == b"first\nreleased\n"


# -- the ORM -----------------------------------------------------------------------------------


def test_concurrent_orm_writes_all_land(server: Server, client: httpx.Client) -> None:
    before = client.get("/legacy/notes/").json()["count"]
    writes, tag = 60, uuid.uuid4().hex[:8]

    def post(i: int) -> httpx.Response:
        return httpx.post(f"{server.url}/legacy/notes/", data={"text": f"{tag}-{i}"}, timeout=60)

    responses = at_once(12, lambda i: [post(12 * k + i) for k in range(writes // 12)])
    flat = [r for batch in responses for r in batch]  # type: ignore[attr-defined]
    assert [r.status_code for r in flat] == [200] * writes, flat[0].text
    assert len({r.json()["id"] for r in flat}) == writes
    assert client.get("/legacy/notes/").json()["count"] == before + writes


@pytest.mark.parametrize(
    ("mount", "wait"),
    [
        ("legacy", 10),
        pytest.param(
            "noclose",
            1.5,
            marks=pytest.mark.xfail(strict=True, reason="never calls close(): no request_finished"),
        ),
    ],
)
def test_close_fires_request_finished_and_the_connections_are_closed(
    server: Server, mount: str, wait: float
) -> None:
    """After N requests that used the ORM, ``request_finished`` has fired for each of them
    (the view waits for it, bounded) and none of the connections they opened, in the
    adapter's threads, is still open."""
    base = f"{server.url}/{mount}"
    start = httpx.get(f"{base}/finished/0/", timeout=30).json()["finished"]
    reads = 10
    responses = at_once(reads, lambda _: httpx.get(f"{base}/notes/", timeout=30))
    assert [r.status_code for r in responses] == [200] * reads
    # This probe's own request_finished comes after its answer: wait for the others only.
    report = httpx.get(f"{base}/finished/{start + 1 + reads}/?timeout={wait}", timeout=30).json()
    assert report["reached"], report
    assert report["used"] >= 1 and report["still_open"] == 0, report


# -- SCRIPT_NAME, CSRF, the admin, FastAPI beside it ------------------------------------------


def test_reverse_and_redirects_carry_the_prefix(server: Server, client: httpx.Client) -> None:
    response = client.get("/legacy/go/")
    assert response.status_code == 302 and response.headers["location"] == "/legacy/target/"
    target = client.get(response.headers["location"]).json()
    assert target == {
        "reverse": "/legacy/target/",
        "script_name": "/legacy",
        "path": "/legacy/target/",
        "path_info": "/target/",
        "absolute": f"{server.url}/legacy/target/",
    }


def csrf(client: httpx.Client, url: str) -> str:
    page = client.get(url)
    assert page.status_code == 200, page.text
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert match is not None and "csrftoken" in client.cookies, page.text
    return match.group(1)


def test_a_csrf_protected_form_post_works_through_the_mount(client: httpx.Client) -> None:
    token = csrf(client, "/legacy/form/")
    form = client.get("/legacy/form/").text
    assert 'action="/legacy/form/"' in form
    refused = client.post("/legacy/form/", data={"text": "no token"})
    assert refused.status_code == 403
    accepted = client.post("/legacy/form/", data={"text": "hi", "csrfmiddlewaretoken": token})
    assert accepted.status_code == 302 and accepted.headers["location"] == "/legacy/notes/"


def test_the_admin_login_page_and_its_links_carry_the_prefix(client: httpx.Client) -> None:
    response = client.get("/legacy/admin/")
    assert response.status_code == 302
    assert response.headers["location"] == "/legacy/admin/login/?next=/legacy/admin/"
    page = client.get(response.headers["location"])
    assert page.status_code == 200
    assert 'action="/legacy/admin/login/?next=/legacy/admin/"' in page.text
    stylesheets = re.findall(r'href="([^"]+\.css)"', page.text)
    assert stylesheets and all(href.startswith("/legacy/static/admin/") for href in stylesheets)
    css = client.get(stylesheets[0])  # FastAPI's StaticFiles, mounted before /legacy
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def test_the_admin_login_works_through_the_mount(client: httpx.Client) -> None:
    url = "/legacy/admin/login/?next=/legacy/admin/"
    token = csrf(client, url)
    form = {"username": "admin", "password": "bridge-pw", "next": "/legacy/admin/"}
    response = client.post(url, data={**form, "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response.headers["location"] == "/legacy/admin/"
    admin = client.get("/legacy/admin/")
    assert admin.status_code == 200 and "Site administration" in admin.text
    assert 'href="/legacy/admin/django_legacy/note/"' in admin.text  # the model, registered


def test_fastapi_routes_are_served_beside_it(client: httpx.Client) -> None:
    assert client.get("/api/ping").json() == {"pong": "fastapi"}
    missing = client.get("/legacy/no-such-page/")  # Django's 404, not FastAPI's
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
    assert client.get("/no-such-page").json() == {"detail": "Not Found"}
