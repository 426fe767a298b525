"""The HTTP API over :class:`RecommenderService` (FastAPI; OpenAPI at ``/docs``).

Reads (recommendations, rank, health, metrics) are open; writes (news, clicks, impressions) and a
user's click history need ``Authorization: Bearer TOKEN``. Bad input is a 4xx with
``{"error": "..."}`` naming the field; bodies are size-limited before they are parsed. Nothing
here logs request bodies, click histories or tokens.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import Annotated, Any

import redis
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from mmnewsrec.serving.asgi import LimitAndTime, WriteGuard, error_response, token_matches, unauthorised_response
from mmnewsrec.serving.poprox import (
    PROTOCOL_HEADER,
    PROTOCOL_VERSION,
    UNMATCHED_HEADER,
    BodyTooLarge,
    PoproxAnswer,
    PoproxRecommender,
    RecommendationRequestV5,
    RecommendationResponseV5,
    decode_body,
    parse_request,
)
from mmnewsrec.serving.queues import Batcher, Busy, Ingestion
from mmnewsrec.serving.records import ID_RULE, RequestError
from mmnewsrec.serving.schemas import (
    MAX_K,
    TIME_LIMIT,
    ClickIn,
    ClientTimes,
    ErrorOut,
    Explanation,
    Explanations,
    FieldRefused,
    HistoryItem,
    ImpressionIn,
    NewsBatch,
    NewsOut,
    PathId,
    RankIn,
    Ranking,
    Recommendations,
    UserOut,
)
from mmnewsrec.serving.service import Conflict, NotFound, RecommenderService, RecommendRequest
from mmnewsrec.serving.state import StoreUnavailable

logger = logging.getLogger(__name__)

#: Largest request body accepted (bytes); POST /news of a few thousand articles fits.
MAX_BODY_BYTES = 4 * 1024 * 1024


#: The page's Content-Security-Policy: its own scripts, styles and images only, never framed.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


#: What the stores raise when their server or file does not answer (the serve extra installs redis).
STORE_OUTAGES = (StoreUnavailable, redis.ConnectionError, redis.TimeoutError, sqlite3.OperationalError)


#: Every error status the API answers, as the OpenAPI document describes it.
ERROR_STATUSES = {
    400: "the request names something the service cannot take (e.g. a news id twice in one batch)",
    401: "this endpoint needs Authorization: Bearer TOKEN",
    404: "an unknown user, news or route",
    409: "an idempotency key the user already used for another event",
    413: "the request body is over the size limit",
    421: "serve --demo answers requests addressed to 127.0.0.1 or localhost only",
    422: "a field is missing, of the wrong type, out of range, or not allowed",
    503: "busy (news waiting to be encoded) or the state store does not answer; see Retry-After",
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, each an :class:`ErrorOut` body."""
    return {code: {"model": ErrorOut, "description": ERROR_STATUSES[code]} for code in codes}


def _describe(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        message = error.get("msg", "invalid")
        if error.get("type") == "string_pattern_mismatch":  # ids: say the rule, not the expression
            message = f"an id is {ID_RULE}"
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def create_app(
    service: RecommenderService,
    token: str | None,
    max_body: int = MAX_BODY_BYTES,
    times: ClientTimes | None = None,
) -> FastAPI:
    """The API for a service. ``token=None`` leaves writes open (``serve --demo``, bound to 127.0.0.1).
    ``times``: which client-given event times are taken (default :class:`ClientTimes`: up to a
    minute ahead of the server's clock).

    Endpoints are ``async`` and call the service on the event loop: the work is CPU-bound and
    short (milliseconds), so one request at a time per process beats a thread pool contending for
    the GIL. ``serve --workers N`` adds processes to use more cores.
    """
    # Swagger UI (/docs) and ReDoc (/redoc) from assets in the fastapi-offline package, not a CDN:
    # the API documentation works where the service runs, which often has no internet.
    app = FastAPIOffline(
        title="mmnewsrec",
        summary="News recommendations that follow each click",
        version="1",
        # What any request can get: the size limit, the demo's host check, bad fields, an outage.
        responses=_errors(413, 421, 422, 503),
    )
    times = times or ClientTimes()
    registry = CollectorRegistry()
    latency = Histogram(
        "mmnewsrec_request_seconds",
        "request latency by route",
        ["method", "route", "status"],
        registry=registry,
        buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    )
    clicks = Counter("mmnewsrec_clicks", "clicks recorded by this replica", registry=registry)
    Gauge("mmnewsrec_index_news", "news in the candidate index", registry=registry).set_function(
        lambda: len(service.index)
    )
    Gauge("mmnewsrec_cached_users", "user vectors in this replica's cache", registry=registry).set_function(
        lambda: service.stats()["cached_users"]
    )

    # Inside the size limit and the timing. /rank and /poprox read, write nothing: open, like GETs
    # (the POPROX platform sends no bearer token).
    app.add_middleware(WriteGuard, token=token, open_paths=frozenset({"/rank", "/poprox"}))
    app.add_middleware(LimitAndTime, max_body=max_body, latency=latency)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, _describe(exc))

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return error_response(404, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Unknown routes (404) and wrong methods (405) answer in the API's error shape too.
        response = error_response(exc.status_code, str(exc.detail))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(Exception)
    async def internal_error(_: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, STORE_OUTAGES):
            logger.warning("state store unavailable: %s", exc)
            response = error_response(503, f"the state store does not answer ({type(exc).__name__}); retry later")
            response.headers["Retry-After"] = "5"
            return response
        logger.exception("internal error")
        return error_response(500, "internal error; the server log has the details")

    @app.exception_handler(Conflict)
    async def conflict(_: Request, exc: Conflict) -> JSONResponse:
        return error_response(409, str(exc))

    @app.exception_handler(Busy)
    async def busy(_: Request, exc: Busy) -> JSONResponse:
        response = error_response(503, str(exc))
        response.headers["Retry-After"] = "5"
        return response

    @app.exception_handler(FieldRefused)
    async def field_refused(_: Request, exc: FieldRefused) -> JSONResponse:
        return error_response(422, str(exc))

    @app.exception_handler(BodyTooLarge)
    async def too_large(_: Request, exc: BodyTooLarge) -> JSONResponse:
        return error_response(413, str(exc))

    @app.exception_handler(RequestError)
    async def bad_request(_: Request, exc: RequestError) -> JSONResponse:
        return error_response(400, str(exc))

    async def authorised(authorization: Annotated[str | None, Header()] = None) -> None:
        if token is not None and not token_matches(authorization, token):
            raise _Unauthorised()

    @app.exception_handler(_Unauthorised)
    async def unauthorised(_: Request, __: _Unauthorised) -> JSONResponse:
        return unauthorised_response()

    write = [Depends(authorised)]
    batcher = Batcher(service)

    web = resources.files("mmnewsrec.serving") / "web"
    web_types = {"index.html": "text/html", "style.css": "text/css", "app.js": "text/javascript"}

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def page() -> Response:
        """The live feed page (plain HTML, CSS and JavaScript shipped in the package): it loads
        nothing from elsewhere, which its Content-Security-Policy holds it to."""
        return Response(
            (web / "index.html").read_bytes(),
            media_type="text/html; charset=utf-8",
            headers={"Content-Security-Policy": PAGE_POLICY},
        )

    @app.get("/web/config", include_in_schema=False)
    async def web_config() -> dict[str, Any]:
        # Sampled user ids only in demo mode: elsewhere they are not the page's to show.
        return {"demo": token is None, "users": service.store.recent_users(6) if token is None else []}

    @app.get("/web/{name}", include_in_schema=False)
    async def web_file(name: str) -> Response:
        if name not in web_types:
            raise NotFound(f"no page file {name!r}")
        return Response((web / name).read_bytes(), media_type=f"{web_types[name]}; charset=utf-8")

    @app.get("/healthz", responses={503: {"description": "the state store does not answer"}})
    async def healthz() -> Response:
        """Liveness, and whether the state store answers (503 naming it when it does not)."""
        body = {
            "status": "ok",
            "news": len(service.index),
            "model": service.predictor.config.name,
            "worker": os.getpid(),  # which replica answered (serve --workers N)
            "store": "ok",
        }
        try:
            service.store.ping()
        except StoreUnavailable as exc:
            body.update(status="unavailable", store=str(exc))
            return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})
        return JSONResponse(body)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    ingestion = Ingestion(service, times)

    @app.post(
        "/news",
        dependencies=write,
        status_code=201,
        openapi_extra=_json_body(app, NewsBatch),
        responses=_errors(400, 401),
    )
    async def add_news(request: Request) -> dict[str, Any]:
        """Answers 201 once the news are durable (in the state store's news log) and served by every
        replica. The body is parsed and the news encoded on a worker thread: a batch of thousands
        never stalls the other requests."""
        ids = await ingestion.submit(await request.body())
        return {"added": len(ids), "news": len(service.index)}

    @app.get("/news/{news_id}", responses=_errors(404))
    async def news(news_id: PathId) -> NewsOut:
        """A news the service was given: its metadata, and whether it is a candidate (not retired)."""
        service.sync_news()
        meta = service.catalogue.get(news_id)
        if meta is None:
            raise NotFound(f"news id {news_id!r} is unknown")
        return NewsOut(
            news_id=news_id,
            category=meta.category,
            subcategory=meta.subcategory,
            title=meta.title,
            abstract=meta.abstract,
            has_image=meta.image is not None,
            entities=list(meta.entities),
            published=meta.published,
            candidate=news_id in service.index,
        )

    @app.delete("/news/{news_id}", dependencies=write, responses=_errors(401, 404))
    async def retire_news(news_id: PathId) -> dict[str, Any]:
        if not service.retire_news([news_id]):
            raise NotFound(f"news id {news_id!r} is not a candidate")
        return {"retired": news_id, "news": len(service.index)}

    @app.post("/users/{user_id}/clicks", dependencies=write, status_code=201, responses=_errors(400, 401, 404, 409))
    async def click(user_id: PathId, body: ClickIn) -> dict[str, Any]:
        new = service.click(user_id, body.news_id, times.resolve(body.time, service.now()), body.click_id)
        if new:
            clicks.inc()
        return {"user_id": user_id, "recorded": new}

    @app.post(
        "/users/{user_id}/impressions", dependencies=write, status_code=201, responses=_errors(400, 401, 404, 409)
    )
    async def impression(user_id: PathId, body: ImpressionIn) -> dict[str, Any]:
        at = times.resolve(body.time, service.now())
        new = service.impression(user_id, body.displayed(), body.clicked, at, body.impression_id)
        if new:
            clicks.inc(len(set(body.clicked)))
        return {"user_id": user_id, "recorded": new}

    @app.get("/users/{user_id}/recommendations", response_model=Recommendations, responses=_errors(400, 404))
    async def recommendations(
        user_id: PathId,
        k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
        exclude_seen: bool = True,
        category: Annotated[list[str] | None, Query(max_length=100)] = None,
        max_age_hours: Annotated[float | None, Query(gt=0, le=24 * 365 * 10)] = None,
        pipeline: Annotated[
            str | None, Query(max_length=64, description="a feed pipeline (default: the service's)")
        ] = None,
        time: Annotated[
            int | None,
            Query(
                ge=0,
                le=TIME_LIMIT,
                description="rank as of this time (Unix seconds; default: the server's clock), as a replay "
                "or a simulation does; at most a minute ahead of the server's clock",
            ),
        ] = None,
    ) -> Response:
        if pipeline is not None and pipeline not in service.pipelines:
            raise FieldRefused(
                f"pipeline: {pipeline!r} is not served here; the pipelines are {sorted(service.pipelines)}"
            )
        if category:
            service.sync_news()
            known_categories = service.catalogue.categories()
            unknown = sorted(set(category) - known_categories)
            if unknown:
                known = sorted(known_categories)
                raise FieldRefused(
                    f"category: no news has category {unknown[0]!r}; the categories are {known[:30]}"
                    + (f" and {len(known) - 30} more" if len(known) > 30 else "")
                )
        at = None if time is None else times.resolve(time, service.now())
        recs = await batcher.submit(RecommendRequest(user_id, k, exclude_seen, category, max_age_hours, at, pipeline))
        # Built as JSON directly: the hot path skips a second validation of what the service made.
        return JSONResponse({"user_id": user_id, "recommendations": [vars(r) for r in recs]})

    @app.get("/users/{user_id}", dependencies=write, responses=_errors(400, 401))
    async def user(user_id: PathId) -> UserOut:
        history = []
        for n, t in service.history(user_id):
            meta = service.catalogue.get(n)
            history.append(
                HistoryItem(news_id=n, time=t, title=meta.title if meta else "", category=meta.category if meta else "")
            )
        return UserOut(user_id=user_id, history=history)

    @app.get("/users/{user_id}/explanations", dependencies=write, responses=_errors(400, 401, 404))
    async def explanations(
        user_id: PathId, news_id: Annotated[str, Query(min_length=1, max_length=256)]
    ) -> Explanations:
        """Why ``news_id`` suits the user: their clicks that weigh most in the user vector."""
        rows = service.explain(user_id, news_id)
        return Explanations(user_id=user_id, news_id=news_id, history=[Explanation(**row) for row in rows])

    @app.get(
        "/news/{news_id}/image",
        responses={200: {"content": {"image/*": {}}, "description": "the image file"}, **_errors(404)},
    )
    async def image(news_id: PathId) -> Response:
        meta = service.catalogue.get(news_id)
        if meta is None or meta.image is None:
            raise NotFound(f"news id {news_id!r} has no image")
        return FileResponse(meta.image)

    poprox = PoproxRecommender(service.predictor, encode_threads=service.encode_threads)
    poprox_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmnewsrec-poprox")
    unmatched = Counter(
        "mmnewsrec_poprox_unmatched_clicks",
        "POPROX clicks left out of a history: the clicked article was not among the interacted ones",
        registry=registry,
    )
    duplicates = Counter(
        "mmnewsrec_poprox_duplicate_candidates", "POPROX candidates sent twice in one request", registry=registry
    )

    @app.get("/poprox/warmup", response_model=list[str])
    async def poprox_warmup(response: Response) -> list[str]:
        """The POPROX pipelines this service answers (one: the run's name), with the protocol
        version in the ``poprox-protocol-version`` header."""
        response.headers[PROTOCOL_HEADER] = PROTOCOL_VERSION
        return poprox.pipelines

    @app.post(
        "/poprox",
        response_model=RecommendationResponseV5,
        openapi_extra=_json_body(app, RecommendationRequestV5),
        responses=_errors(400),
    )
    async def poprox_recommend(
        request: Request, pipeline: Annotated[str | None, Query(max_length=256)] = None
    ) -> Response:
        """A POPROX ``RecommendationRequestV5`` answered with a ``RecommendationResponseV5`` (protocol
        5.0). The body may be gzip (``Content-Encoding: gzip``) and base64 (``isBase64Encoded: true``)
        as POPROX sends it. Articles are encoded on a worker thread; the other requests go on."""
        body = await request.body()
        encoded = request.headers.get("isBase64Encoded", "").strip().lower() in ("1", "true", "yes")
        answer = await asyncio.get_running_loop().run_in_executor(
            poprox_executor,
            _answer_poprox,
            poprox,
            body,
            encoded,
            request.headers.get("content-encoding", ""),
            pipeline,
        )
        unmatched.inc(answer.unmatched_clicks)
        duplicates.inc(answer.duplicate_candidates)
        headers = {PROTOCOL_HEADER: PROTOCOL_VERSION, UNMATCHED_HEADER: str(answer.unmatched_clicks)}
        return JSONResponse(answer.response.model_dump(mode="json"), headers=headers)

    @app.post("/rank", response_model=Ranking, responses=_errors(400, 404))
    async def rank(body: RankIn) -> Response:
        ranked = service.rank(body.history, body.candidates, times.resolve(body.time, service.now()))
        return JSONResponse({"ranking": [{"news_id": n, "score": s} for n, s in ranked]})

    _live_limits(
        app,
        lambda: int(service.now()),
        lambda: sorted(service.catalogue.categories()),
        lambda: poprox.pipelines,
        lambda: sorted(service.pipelines),
    )
    return app


class _Unauthorised(Exception):
    pass


def _answer_poprox(
    poprox: PoproxRecommender, body: bytes, base64_encoded: bool, content_encoding: str, pipeline: str | None
) -> PoproxAnswer:
    """Decodes, validates and answers one POPROX request (on the POPROX worker thread)."""
    raw = decode_body(body, base64_encoded, content_encoding)
    try:
        request = parse_request(raw)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
    return poprox.recommend(request, pipeline)


def _live_limits(
    app: FastAPI,
    now: Callable[[], int],
    categories: Callable[[], list[str]],
    pipelines: Callable[[], list[str]],
    feeds: Callable[[], list[str]],
) -> None:
    """What the OpenAPI document says of the limits that move, as they are when it is fetched: every
    request ``time``'s maximum is the server's clock (the API takes up to a minute ahead of it), a
    recommendation's ``category`` is one of the categories the service has news in, its
    ``pipeline`` one of the service's feed pipelines, and POPROX's ``pipeline`` one it answers."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        document = copy.deepcopy(build())
        ceiling = now()
        for model in document.get("components", {}).get("schemas", {}).values():
            time = model.get("properties", {}).get("time")
            for branch in (time or {}).get("anyOf", [time] if time else []):
                if branch.get("type") == "integer" and branch.get("maximum") == TIME_LIMIT:  # a request's
                    branch["maximum"] = ceiling
        _choices(document["paths"]["/poprox"]["post"], "pipeline", "string", pipelines())
        recommendations = document["paths"]["/users/{user_id}/recommendations"]["get"]
        known = categories()
        if known:
            _choices(recommendations, "category", "array", known)
        _choices(recommendations, "pipeline", "string", feeds())
        for parameter in recommendations.get("parameters", []):
            for branch in parameter["schema"].get("anyOf", []):
                if branch.get("type") == "integer" and branch.get("maximum") == TIME_LIMIT:  # ?time=
                    branch["maximum"] = ceiling
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _choices(operation: dict[str, Any], name: str, kind: str, values: list[str]) -> None:
    """Sets the allowed values of query parameter ``name`` in an OpenAPI operation: the ``string``
    branch of its schema an enum, or the items of its ``array`` branch."""
    for parameter in operation.get("parameters", []):
        if parameter["name"] != name:
            continue
        for branch in parameter["schema"].get("anyOf", []):
            if branch.get("type") == kind == "string":
                branch["enum"] = values
            elif branch.get("type") == kind == "array":
                branch["items"] = {"type": "string", "enum": values}


def _json_body(app: FastAPI, model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of an endpoint that reads its JSON body itself (as ``model``)."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions = {model.__name__: {k: v for k, v in schema.items() if k != "$defs"}, **schema.get("$defs", {})}
    build = app.openapi

    def openapi() -> dict[str, Any]:
        document = build()
        document.setdefault("components", {}).setdefault("schemas", {}).update(definitions)
        return document

    app.openapi = openapi  # type: ignore[method-assign]
    reference = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": reference}}}}
