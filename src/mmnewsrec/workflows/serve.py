"""`mmnewsrec serve`: a trained run behind the HTTP API, news preloaded from MIND-format files."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from mmnewsrec.config import load_yaml
from mmnewsrec.config.pipeline import PipelineConfig
from mmnewsrec.errors import ConfigError, MmnewsrecError
from mmnewsrec.runs.hub import locate_run
from mmnewsrec.runs.layout import RunDir
from mmnewsrec.serving.predictor import Predictor
from mmnewsrec.serving.records import news_files, read_news_records
from mmnewsrec.serving.service import RecommenderService
from mmnewsrec.serving.state import open_store

logger = logging.getLogger(__name__)

#: The environment variable that holds the write token when no token file is given.
TOKEN_ENV = "MMNEWSREC_TOKEN"


def read_token(token_file: str | Path | None) -> str | None:
    """The write token from a file (first line) or :data:`TOKEN_ENV`; None when neither is set."""
    if token_file is not None:
        try:
            lines = Path(token_file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"--token-file {token_file}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"--token-file {token_file}: not UTF-8 text (byte {exc.start}); write the token as text"
            ) from None
        token = lines[0].strip() if lines else ""
        if not token:
            raise ConfigError(f"--token-file {token_file}: the first line is empty; write the token on it")
        return token
    return os.environ.get(TOKEN_ENV) or None


def build_service(
    run: str | Path,
    news: Sequence[str | Path] = (),
    state: str | None = None,
    cache_dir: str | Path | None = None,
    cold_start: str = "popularity",
    progress: bool = True,
    pipelines: Sequence[str | Path] = (),
) -> RecommenderService:
    """Loads the run, opens the store (default: ``RUN/serve/state.db``), preloads the news;
    ``pipelines``: feed pipeline YAML files, the first the default."""
    run = locate_run(run)  # a folder, or a run pushed to the Hub (ORG/NAME[@REVISION])
    predictor = Predictor.load(run, cache_dir=cache_dir)
    state = state or RunDir(run).default_state_url()
    feeds = load_pipelines(pipelines)
    service = RecommenderService(predictor, open_store(state), cold_start=cold_start, pipelines=feeds)
    records = read_news_records(news)
    if records:
        logger.info("encoding %d news from %s", len(records), ", ".join(map(str, news)))
        # Encoded once, batched, with a progress bar; features kept in the run's feature store, so a
        # restart reuses them. Not logged: every start reads the files again.
        service.add_news(records, progress=progress, durable=False, cache=True)
    service.sync_news()  # then the news posted and retired through the API, from the store's log
    logger.info("serving %d news; user state in %s", len(service.index), service.store.url)
    return service


def serve(
    run: str | Path,
    news: Sequence[str | Path] = (),
    state: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    token_file: str | Path | None = None,
    demo: bool = False,
    cache_dir: str | Path | None = None,
    cold_start: str = "popularity",
    workers: int = 1,
    progress: bool = True,
    allow_volatile_store: bool = False,
    pipelines: Sequence[str | Path] = (),
) -> None:
    """Serves until interrupted. Without ``demo`` a write token is required.

    A state store that could lose acknowledged writes in a crash (Redis without its append-only
    file) is refused, unless ``allow_volatile_store`` (then a warning says so).

    ``workers`` > 1 starts that many processes behind one port, each a full replica (its own model
    and index) over the shared state store: every request sees every click at once.
    """
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        raise ConfigError("serve needs the serving extra: pip install 'mmnewsrec[serve]'") from None
    if demo and token_file is not None:
        raise ConfigError("--demo leaves writes open, so it takes no --token-file: choose one")
    run = locate_run(run)  # a folder, or a run pushed to the Hub (ORG/NAME[@REVISION])
    RunDir(run).require_run()  # before anything is created inside it
    token = read_token(token_file)
    if demo and host not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigError(f"--demo leaves writes open and serves only on 127.0.0.1, not {host}")
    if token is None and not demo:
        raise ConfigError(f"serve needs a write token: --token-file FILE or {TOKEN_ENV}=... (or --demo, local only)")
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    state = state or RunDir(run).default_state_url()
    settings = {
        "run": str(run),
        "news": [str(n) for n in news],
        "state": state,
        "cache_dir": str(cache_dir) if cache_dir is not None else None,
        "cold_start": cold_start,
        "demo": demo,
        "pipelines": [str(p) for p in pipelines],
    }
    load_pipelines(pipelines)  # a bad file fails here, once, not in every worker
    check_durable(state, allow_volatile_store)  # a bad URL fails here too, once, not in every worker
    news_files(news)
    try:
        # With several workers, each listens on its own SO_REUSEPORT socket: the kernel spreads
        # connections evenly over them (one shared socket lets the quickest worker take them all).
        # This one only holds the port (bound, not listening) so that a taken port fails here.
        listener = _listen(host, port, reuse_port=workers > 1, listen=workers == 1)
    except OSError as exc:
        raise MmnewsrecError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    where = f"http://{'[' + host + ']' if ':' in host else host}:{listener.getsockname()[1]}"
    if workers == 1:
        app = _app(settings, token, progress)
        logger.info("serving %s/ (the page; API docs at %s/docs); Ctrl+C stops", where, where)
        _run(listener, app)
        return
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_worker, args=(host, port, settings, token, os.getpid()), name=f"mmnewsrec-serve-{i}")
        for i in range(workers)
    ]
    for process in processes:
        process.start()
    logger.info("%d workers starting on %s/ (each answers once it has loaded); Ctrl+C stops", workers, where)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(0.5) and all(p.is_alive() for p in processes):
        pass
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=30)
    listener.close()
    if not stop.is_set():
        raise MmnewsrecError("a serve worker exited; stopped the others (see the log above)")


def check_durable(state: str, allow_volatile: bool = False) -> None:
    """Refuses (or with ``allow_volatile`` warns about) a store whose acknowledged writes a crash
    of its server could lose."""
    store = open_store(state)
    try:
        problem = store.durability_problem()
    finally:
        store.close()
    if problem is None:
        return
    if not allow_volatile:
        raise ConfigError(
            f"state store {state}: {problem}. Run Redis with --appendonly yes (README: Serving), "
            "or pass --allow-volatile-store to serve anyway"
        )
    logger.warning("state store %s: %s; serving anyway (--allow-volatile-store)", state, problem)


def _listen(host: str, port: int, reuse_port: bool = False, listen: bool = True) -> socket.socket:
    """A TCP socket on ``host:port`` with TCP_NODELAY, inherited by every accepted connection.

    Created with an explicit ``IPPROTO_TCP`` so that asyncio also sets TCP_NODELAY on each
    connection's transport: without it small responses wait out the peer's delayed ACK (40 ms).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind((host, port))
    if listen:
        listener.listen(2048)
    return listener


def _run(listener: socket.socket, app) -> None:
    import uvicorn

    from mmnewsrec.serving.connections import IDLE_SECONDS, DeadlineProtocol

    # Deadlines for idle connections and for requests that arrive a few bytes at a time.
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, http=DeadlineProtocol, timeout_keep_alive=int(IDLE_SECONDS)
    )
    uvicorn.Server(config).run(sockets=[listener])


def _worker(host: str, port: int, settings: dict, token: str | None, parent: int) -> None:
    """One ``serve --workers N`` process: a full replica over the shared state store, on its own socket.

    It dies with the parent, however the parent ends (``kill -9`` included): orphaned workers would
    keep the port, or serve beside a restarted generation with other news.
    """
    _die_with_parent(parent)
    app = _app(settings, token, progress=False)  # ready before it takes connections
    _run(_listen(host, port, reuse_port=True), app)


def _die_with_parent(parent: int, poll_seconds: float = 0.5) -> None:
    """Ends this process when ``parent`` ends: the kernel's parent-death signal where Linux offers it,
    and a thread that watches the parent id (it changes once the parent is gone) everywhere."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent ended before the signal was set
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        logger.warning("serve worker %d: the parent process ended; stopping", os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)
        os._exit(1)  # uvicorn did not stop on SIGTERM in time

    threading.Thread(target=watch, name="mmnewsrec-parent-watch", daemon=True).start()


def load_pipelines(paths: Sequence[str | Path]) -> list[PipelineConfig]:
    """The feed pipelines of ``serve --pipeline`` (each file checked; names distinct)."""
    feeds = [load_yaml(PipelineConfig, path) for path in paths]
    names = [feed.name for feed in feeds]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"--pipeline: two pipelines are named {name!r}; give each its own name")
    return feeds


def _app(settings: dict, token: str | None, progress: bool):
    from mmnewsrec.serving.api import create_app

    service = build_service(
        settings["run"],
        settings["news"],
        settings["state"],
        settings["cache_dir"],
        settings["cold_start"],
        progress,
        settings["pipelines"],
    )
    # Requests are single users: small products that extra intra-op threads only slow down (and the
    # server's worker threads would oversubscribe the cores).
    torch.set_num_threads(1)
    return create_app(service, None if settings["demo"] else token)
