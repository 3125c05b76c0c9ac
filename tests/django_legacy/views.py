"""The test project's views: sync Django, as a legacy codebase has them."""

from __future__ import annotations

import threading

from django.core.signals import request_finished
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect
from django.template import engines
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from .models import Note

_lock = threading.Lock()
_barriers: dict[tuple[int, str], threading.Barrier] = {}


def barrier(request: HttpRequest, parties: int, round: str) -> JsonResponse:
    """Wait until ``parties`` requests of this ``round`` are in the view at the same time.

    Only an adapter that runs them on ``parties`` threads at once gets them all there; one
    that serialises them leaves the first waiting alone until the timeout breaks the barrier.
    """
    with _lock:
        gate = _barriers.setdefault((parties, round), threading.Barrier(parties))
    try:
        gate.wait(timeout=float(request.GET.get("timeout", "20")))
    except threading.BrokenBarrierError:
        return JsonResponse(
            {"error": "barrier broken: the requests did not run at once"}, status=500
        )
    return JsonResponse({"thread": threading.get_ident()})


def whoami(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"thread": threading.current_thread().name})


_releases: dict[str, threading.Event] = {}


def _release_event(key: str) -> threading.Event:
    with _lock:
        return _releases.setdefault(key, threading.Event())


def stream(request: HttpRequest, key: str) -> StreamingHttpResponse:
    """Yield a first chunk, then wait (bounded) until the client, holding it, releases the
    second: an adapter that buffers the response times the wait out."""
    wait = float(request.GET.get("timeout", "20"))

    def chunks() -> object:
        yield b"first\n"
        yield b"released\n" if _release_event(key).wait(wait) else b"timed out\n"

    return StreamingHttpResponse(chunks(), content_type="text/plain")


def release(request: HttpRequest, key: str) -> JsonResponse:
    _release_event(key).set()
    return JsonResponse({"released": key})


# -- database connections and request_finished ----------------------------------------------------

_finished = threading.Condition()
_finished_count = 0
# The DatabaseWrapper of each thread a view used, per mount (SCRIPT_NAME).
_used_connections: dict[tuple[str, int], object] = {}


def _count_finished(**kwargs: object) -> None:
    # Connected after Django's own close_old_connections: when this runs, the request's
    # connection has been closed (CONN_MAX_AGE = 0) if close() fired the signal.
    global _finished_count
    with _finished:
        _finished_count += 1
        _finished.notify_all()


request_finished.connect(_count_finished)


@csrf_exempt
def notes(request: HttpRequest) -> JsonResponse:
    """POST: add a note (each in its own transaction); GET: how many there are."""
    if request.method == "POST":
        note = Note.objects.create(
            text=request.POST["text"], thread=threading.current_thread().name
        )
        answer = {"id": note.pk}
    else:
        answer = {"count": Note.objects.count()}
    wrapper = connections["default"]  # this thread's
    with _lock:
        _used_connections[request.META["SCRIPT_NAME"], id(wrapper)] = wrapper
    return JsonResponse(answer)


def finished(request: HttpRequest, at_least: int) -> JsonResponse:
    """Wait (bounded) until ``request_finished`` has fired ``at_least`` times, then say how
    many times it did and how many of the connections views of this mount used are still
    open."""
    timeout = float(request.GET.get("timeout", "10"))
    with _finished:
        ok = _finished.wait_for(lambda: _finished_count >= at_least, timeout=timeout)
        count = _finished_count
    mount = request.META["SCRIPT_NAME"]
    with _lock:
        wrappers = [w for (name, _), w in _used_connections.items() if name == mount]
    still_open = sum(1 for wrapper in wrappers if wrapper.connection is not None)  # type: ignore[attr-defined]
    return JsonResponse(
        {"reached": ok, "finished": count, "used": len(wrappers), "still_open": still_open}
    )


# -- SCRIPT_NAME, redirects, CSRF --------------------------------------------------------------


def go(request: HttpRequest) -> HttpResponse:
    return redirect("target")


def target(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {
            "reverse": reverse("target"),
            "script_name": request.META["SCRIPT_NAME"],
            "path": request.path,
            "path_info": request.path_info,
            "absolute": request.build_absolute_uri(),
        }
    )


_FORM = engines["django"].from_string(
    '<form method="post" action="{% url "form" %}">{% csrf_token %}'
    '<input name="text"><button>Add</button></form>'
)


def form(request: HttpRequest) -> HttpResponse:
    """A CSRF-protected form: GET renders it, a POST that passes the check adds a note."""
    if request.method == "POST":
        Note.objects.create(text=request.POST["text"], thread=threading.current_thread().name)
        return redirect("notes")
    get_token(request)
    return HttpResponse(_FORM.render({}, request))
