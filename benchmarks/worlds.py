"""Every shipped offline set-up and every baseline on every synthetic world of the zoo: one table.

The worlds (``mmnewsrec synth --preset``) differ in what drives a click: topic interest, entity
affinity, hidden appeal, recency, interest drift, history length, cold candidates. A set-up tuned
on one of them can lose to a simple baseline on another; this table shows where. Each cell is the
dev AUC; the last columns are each set-up's mean gap to the world's oracle (the ranking by the
generator's true click probabilities), its mean and worst gap to the world's ceiling of what
histories and training clicks reveal (:data:`CEILINGS`), and the worlds where it loses to the best
baseline that reads no more than it does (for a text model: text and history baselines; with
popularity: every baseline but the oracle).

    python benchmarks/worlds.py                      # tiny worlds, about 15 min on 2 cores
    python benchmarks/worlds.py --scale log12k       # small-data worlds (12k training impressions)
    python benchmarks/worlds.py --worlds entities default --setups text_minilm text_minilm+entities

Every dataset and run lands in ``--work`` (default ``runs/worlds``); one JSON line per cell is
printed as it is measured, the table at the end (also ``WORK/worlds.md``). ``--from-logs LOG...``
trains nothing and prints the table of cells that earlier runs printed (set-ups measured by
separate commands, joined).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from mmnewsrec.config import ExperimentConfig, load_yaml
from mmnewsrec.data.synthetic import PRESETS, generate_mind
from mmnewsrec.workflows.baseline import run_baseline_split
from mmnewsrec.workflows.train import run_train
from synthetic_ceilings import dataset_ceilings

ROOT = Path(__file__).resolve().parents[1]
BASELINES = ("random", "popularity", "recent-popularity", "category-profile", "oracle")
# benchmarks/synthetic_ceilings.py on the world's own dev split: the Bayes posterior of each user's
# interests from the history's topics with the title-visible popularity ("text + history"), and the
# same plus what the training clicks reveal, the appeal of news shown in training and every news's
# age ("+ training clicks"; a reference point, not a strict bound: a model also counts the dev
# split's own earlier clicks). Neither knows the entities or the interest drift.
CEILINGS = {"text": "ceiling: text + history", "clicks": "ceiling: + training clicks"}
TEXT_BASELINES = ("random", "category-profile")  # what reads no more than titles and histories
SETUPS = {  # name -> (config, overrides, reads popularity)
    "demo_text_minilm": ("configs/demo_text_minilm.yaml", [], False),
    "text_minilm": ("configs/text_minilm.yaml", [], False),
    "text_minilm+entities": ("configs/text_minilm.yaml", ["model.entities={}"], False),
    "text_minilm_popularity": ("configs/text_minilm_popularity.yaml", [], True),
    "text_minilm_popularity+entities": ("configs/text_minilm_popularity.yaml", ["model.entities={}"], True),
}


def measure(world: str, scale: str, seed: int, work: Path, setups: list[str]) -> dict[str, float]:
    data = work / f"{world}-{scale}-{seed}" / "data"
    if not (data / "synthetic.json").is_file():
        generate_mind(data, scale=scale, seed=seed, images=False, preset=world, overwrite=True)
    cells: dict[str, float] = {}
    for method in BASELINES:
        cells[method] = run_baseline_split(data, method, "dev", seed=seed)["auc"]
        print(json.dumps({"world": world, "set-up": method, "auc": round(cells[method], 4)}), flush=True)
    for key, auc in dataset_ceilings(data, scale, seed, world).items():
        cells[CEILINGS[key]] = auc
        print(json.dumps({"world": world, "set-up": CEILINGS[key], "auc": round(auc, 4)}), flush=True)
    for name in setups:
        path, overrides, _ = SETUPS[name]
        config = load_yaml(ExperimentConfig, ROOT / path, [*overrides, f"training.seed={seed}"])
        started = time.perf_counter()
        record = run_train(config, data_root=data, run_dir=data.parent / "runs" / name, overwrite=True)
        cells[name] = float(record["auc"])
        seconds = time.perf_counter() - started
        print(json.dumps({"world": world, "set-up": name, "auc": round(cells[name], 4), "seconds": round(seconds, 1)}))
    return cells


def table(results: dict[str, dict[str, float]], setups: list[str]) -> str:
    worlds = list(results)
    clicks = CEILINGS["clicks"]
    header = " | ".join(worlds)
    gaps = "mean gap to oracle | mean gap to the clicks ceiling | worst gap to it"
    rows = [f"| set-up | {header} | {gaps} | loses to a baseline in |"]
    rows.append("|" + " --- |" * (len(worlds) + 5))
    for name in (*BASELINES, *CEILINGS.values(), *setups):
        aucs = [results[w][name] for w in worlds]
        gaps = [results[w]["oracle"] - results[w][name] for w in worlds]
        to_ceiling = [results[w][clicks] - results[w][name] for w in worlds]
        losses = "-"
        if name in SETUPS:
            reads_popularity = SETUPS[name][2]
            rivals = [b for b in BASELINES if b != "oracle"] if reads_popularity else list(TEXT_BASELINES)
            lost = [w for w in worlds if results[w][name] < max(results[w][b] for b in rivals)]
            losses = ", ".join(lost) or "none"
        cells = " | ".join(f"{a:.4f}" for a in aucs)
        rows.append(
            f"| {name} | {cells} | {np.mean(gaps):.4f} | {np.mean(to_ceiling):.4f} | {max(to_ceiling):.4f} | {losses} |"
        )
    return "\n".join(rows)


def from_logs(paths: list[Path], worlds: list[str], setups: list[str], scale: str, seed: int, work: Path):
    """The cells of earlier runs of this script (its printed JSON lines; a later line wins), with
    the ceilings computed where a log lacks them (each world's data must still be in ``work``)."""
    results: dict[str, dict[str, float]] = {world: {} for world in worlds}
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("{"):
                cell = json.loads(line)
                if cell.get("world") in results:
                    results[cell["world"]][cell["set-up"]] = cell["auc"]
    for world, cells in results.items():
        if any(name not in cells for name in CEILINGS.values()):
            for key, auc in dataset_ceilings(work / f"{world}-{scale}-{seed}" / "data", scale, seed, world).items():
                cells[CEILINGS[key]] = auc
        missing = [name for name in (*BASELINES, *setups) if name not in cells]
        if missing:
            raise SystemExit(f"error: the logs have no cell for {world} x {missing}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="tiny")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worlds", nargs="+", default=sorted(PRESETS), choices=sorted(PRESETS))
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument("--work", type=Path, default=Path("runs/worlds"))
    parser.add_argument(
        "--from-logs",
        nargs="+",
        type=Path,
        metavar="LOG",
        help="train nothing: the table of the cells that earlier runs printed (their stdout saved in LOG files)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.from_logs:
        results = from_logs(args.from_logs, args.worlds, args.setups, args.scale, args.seed, args.work)
    else:
        results = {world: measure(world, args.scale, args.seed, args.work, args.setups) for world in args.worlds}
    text = table(results, args.setups)
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "worlds.md").write_text(f"scale {args.scale}, seed {args.seed}\n\n{text}\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
