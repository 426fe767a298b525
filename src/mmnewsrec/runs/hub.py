"""Runs on the Hugging Face Hub: ``push_run`` uploads what inference needs as a model repository
with a generated model card; ``locate_run`` turns ``ORG/NAME`` (or ``ORG/NAME@REVISION``) into a
local run folder, so ``Predictor.load``, ``evaluate --run`` and ``serve --run`` take either.

A pushed repository holds the run's ``config.yaml``, ``run.json``, ``vocabs/``, ``metrics.json``,
``log_counters.npz`` (models that read log counters) and ``checkpoints/best/*.safetensors``: not
the resumable checkpoint (optimizer state, RNG), not the training curves or logs.

A downloaded run lives in the Hugging Face cache (``snapshot_download``: ``HF_HUB_CACHE``,
``HF_TOKEN``, ``HF_ENDPOINT``, ``HF_HUB_OFFLINE`` honoured). What is written next to a run
(``evaluate``'s predictions, ``serve``'s state store) must not go into that cache, so the run is
used through a folder of links to the snapshot's files, ``~/.cache/mmnewsrec/hub-runs/ORG--NAME/COMMIT``
(``MMNEWSREC_HUB_RUNS`` moves it), where new files are written as in any run folder.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

import yaml

from mmnewsrec.runs.layout import RunDir, RunError

logger = logging.getLogger(__name__)

#: ``OWNER/NAME`` or ``OWNER/NAME@REVISION``, as the Hub spells repository ids.
HUB_REF = re.compile(r"(?P<repo>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)(?:@(?P<revision>[\w./-]+))?")
HUB_RUNS_ENV = "MMNEWSREC_HUB_RUNS"
DEFAULT_HUB_RUNS = Path("~/.cache/mmnewsrec/hub-runs")
CARD_FILE = "README.md"
MIND_LICENCE = "https://github.com/msnews/MIND/blob/master/MSR%20License_Data.pdf"


def parse_hub_ref(text: str) -> tuple[str, str | None] | None:
    """``(repo_id, revision)`` when ``text`` reads as a Hub model reference, else None."""
    match = HUB_REF.fullmatch(str(text))
    if match is None or match["repo"].endswith((".", "-")):
        return None
    return match["repo"], match["revision"]


def run_files(run: str | Path) -> list[tuple[str, Path]]:
    """The files of a run that inference needs, as ``(path in the repository, local file)``.

    Raises:
        RunError: not a run folder, a baseline run, or one without best weights yet.
    """
    folder = RunDir(run)
    folder.require_run()
    config = folder.read_config()
    if config.baseline:
        raise RunError(f"{folder.path}: a '{config.baseline}' baseline run has no model to push")
    if not folder.best.is_dir():
        raise RunError(f"{folder.best}: no saved weights; the run has not reached its first evaluation")
    files = [folder.config_path, folder.info_path]
    files += sorted(p for p in folder.vocab_dir.iterdir() if p.is_file())
    files += sorted(p for p in folder.best.iterdir() if p.is_file() and p.suffix == ".safetensors")
    files += [p for p in (folder.metrics_path, folder.counters_path) if p.is_file()]
    return [(p.relative_to(folder.path).as_posix(), p) for p in files]


def model_card(run: str | Path, repo_id: str) -> str:
    """The repository's README.md: metadata, dev metrics, training data, config, licence note."""
    folder = RunDir(run)
    config = folder.read_config()
    info = folder.read_info()
    metrics = json.loads(folder.metrics_path.read_text()) if folder.metrics_path.is_file() else {}
    front = {
        "library_name": "mmnewsrec",
        "tags": ["news-recommendation", "mind", "nrms", f"news-encoder:{config.model.news.type}"],
        "license": "other",
        "license_name": "mind-research-only",
        "license_link": MIND_LICENCE,
        "pipeline_tag": "text-ranking",
    }
    rows = [f"| {key} | {float(metrics[key]):.4f} |" for key in ("auc", "mrr", "ndcg@5", "ndcg@10") if key in metrics]
    metric_table = (
        "| metric | dev |\n| --- | --- |\n" + "\n".join(rows)
        if rows
        else "No final dev evaluation was recorded (the run has no `metrics.json`)."
    )
    data = Path(config.data.root).name if config.data.root else "unknown"
    scored = metrics.get("impressions")
    lines = [
        "---",
        yaml.safe_dump(front, sort_keys=False).strip(),
        "---",
        "",
        f"# {config.name}",
        "",
        f"A news recommender trained with [mmnewsrec](https://pypi.org/project/mmnewsrec/): news encoder "
        f"`{config.model.news.type}`, user encoder `{config.model.user.type}`, scorer `{config.model.scorer}`.",
        "",
        "## Dev metrics",
        "",
        "Per-impression means, as the official MIND scorer computes them"
        + (f", over {scored:,} impressions" if isinstance(scored, int) else "")
        + f" (best checkpoint, step {metrics.get('best_step', '?')} of {metrics.get('steps', '?')}):",
        "",
        metric_table,
        "",
        "## Training data",
        "",
        f"Trained on `{data}` (a MIND-format dataset: `news.tsv`, `behaviors.tsv`), created {info.created}.",
        "",
        "## Use",
        "",
        "```python",
        "from mmnewsrec.serving import Predictor",
        "",
        f'predictor = Predictor.load("{repo_id}")',
        "```",
        "",
        "```bash",
        f"mmnewsrec evaluate --run {repo_id} --data DIR",
        f"mmnewsrec serve --run {repo_id} --news DIR/dev",
        "```",
        "",
        "## Licence",
        "",
        "MIND, the Microsoft News Dataset, is free for research use only, under the "
        f"[Microsoft Research License]({MIND_LICENCE}); a model trained on it inherits that restriction. "
        "Use these weights for non-commercial research.",
        "",
        "## Config",
        "",
        "```yaml",
        folder.config_path.read_text().strip(),
        "```",
        "",
    ]
    return "\n".join(lines)


def export_run(run: str | Path, out: str | Path, repo_id: str) -> Path:
    """Writes the repository's contents (the run's inference files and README.md) into ``out``."""
    out = Path(out)
    for name, source in run_files(run):
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    (out / CARD_FILE).write_text(model_card(run, repo_id), encoding="utf-8")
    return out


def push_run(
    run: str | Path,
    repo_id: str,
    revision: str | None = None,
    private: bool = False,
    commit_message: str | None = None,
    token: str | None = None,
) -> dict[str, str]:
    """Uploads a run as a Hub model repository (created if needed); returns its URL and commit.

    Raises:
        RunError: not a pushable run, a bad repository id, or the Hub refused (the reason named).
    """
    from huggingface_hub import HfApi

    if parse_hub_ref(repo_id) is None or "@" in repo_id:
        raise RunError(f"{repo_id!r}: expected a repository id ORG/NAME")
    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=token)
    try:
        with tempfile.TemporaryDirectory(prefix="mmnewsrec-push-") as staged:
            export_run(run, staged, repo_id)
            api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
            if revision:
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            commit = api.upload_folder(
                repo_id=repo_id,
                folder_path=staged,
                repo_type="model",
                revision=revision,
                commit_message=commit_message or f"mmnewsrec run {RunDir(run).read_config().name}",
            )
    except RunError:
        raise
    except (OSError, ValueError) as exc:  # huggingface_hub's HTTP errors are OSErrors
        raise RunError(f"push to {repo_id}: {_first_line(exc)}") from None
    return {"repo": repo_id, "url": str(commit.repo_url), "commit": commit.oid, "commit_url": commit.commit_url}


def hub_runs_root() -> Path:
    return Path(os.environ.get(HUB_RUNS_ENV) or DEFAULT_HUB_RUNS).expanduser()


def locate_run(run: str | Path) -> Path:
    """A local run folder for ``run``: the folder itself, or a pushed run ``ORG/NAME[@REVISION]``
    fetched from the Hub (a local path that exists always wins).

    Raises:
        RunError: a Hub reference that cannot be fetched (not found, gated or private without a
            token, offline with nothing cached), with what to do.
    """
    path = Path(run).expanduser()
    ref = parse_hub_ref(str(run))
    # A local path wins, and so does one whose first folder exists here (runs/typo is a typo, not
    # the Hub's user "runs"): the Hub is asked only for what cannot be a local run.
    if ref is None or path.parent.exists():
        return path
    repo_id, revision = ref
    snapshot = _snapshot(repo_id, revision, str(run))
    local = hub_runs_root() / repo_id.replace("/", "--") / snapshot.name
    for source in sorted(snapshot.rglob("*")):
        if source.is_dir():
            continue
        target = local / source.relative_to(snapshot)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(source.resolve(), target)
    logger.info("run %s (commit %s) used from %s", repo_id, snapshot.name, local)
    return local


def _snapshot(repo_id: str, revision: str | None, text: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
    patterns = _inference_patterns()
    try:
        folder = snapshot_download(
            repo_id,
            repo_type="model",
            revision=revision,
            allow_patterns=patterns,
            endpoint=os.environ.get("HF_ENDPOINT") or None,
            local_files_only=offline,
            cache_dir=os.environ.get("HF_HUB_CACHE") or None,  # read now, not when huggingface_hub was imported
            library_name="mmnewsrec",
        )
    except GatedRepoError:
        raise RunError(
            f"{text}: the Hub repository is gated; accept its terms on its page, then set HF_TOKEN"
        ) from None
    except RevisionNotFoundError:
        raise RunError(f"{text}: the Hub repository {repo_id} has no revision {revision!r}") from None
    except RepositoryNotFoundError:
        raise RunError(
            f"{text}: no such run folder, and no Hub model repository {repo_id} (or it is private: set HF_TOKEN)"
        ) from None
    except LocalEntryNotFoundError:
        raise RunError(
            f"{text}: no such run folder, and the Hub model {repo_id} is not in the Hugging Face cache "
            "(offline, or the Hub cannot be reached)"
        ) from None
    except (OSError, ValueError) as exc:
        raise RunError(f"{text}: no such run folder, and fetching it from the Hub failed: {_first_line(exc)}") from None
    snapshot = Path(folder)
    if not (snapshot / RunDir.CONFIG).is_file():
        raise RunError(f"{text}: the Hub repository {repo_id} holds no mmnewsrec run (no {RunDir.CONFIG})")
    return snapshot


def _inference_patterns() -> list[str]:
    """What :func:`run_files` uploads, as ``snapshot_download``'s allow patterns (RunDir's names)."""
    layout = RunDir(".")

    def relative(path: Path) -> str:
        return path.relative_to(layout.path).as_posix()

    files = [layout.config_path, layout.info_path, layout.metrics_path, layout.counters_path]
    return [*map(relative, files), f"{relative(layout.vocab_dir)}/*", f"{relative(layout.best)}/*"]


def _first_line(exc: BaseException) -> str:
    """The error's message on one line (huggingface_hub's HTTP errors put the URL on a later one)."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return text or type(exc).__name__
