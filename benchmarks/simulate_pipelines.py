"""Feed pipelines compared in closed loop: one trained run, one synthetic world, several days.

Runs ``mmnewsrec simulate`` (in process) once per variant, each from the same world and seed:
plain top-k with online and with static user vectors, MMR and calibration at three trade-offs
each, and the three exploration samplers (softmax at three temperatures, Thompson at two prior
strengths). Writes each variant's ``WORK/NAME/simulation.json`` and the pipeline YAMLs it used
(``WORK/pipelines/``), then prints one table; ``mmnewsrec report --simulation
WORK/*/simulation.json`` tables the days and draws their curves and the fronts.

    python benchmarks/simulate_pipelines.py --run RUN --data SYNTH_DIR --days 7 --users 1500 --work W
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import yaml

from mmnewsrec.workflows.simulate import SIMULATION_FILE, run_simulation

#: name -> (pipeline settings or None for the model's top k, online user vectors).
VARIANTS: dict[str, tuple[dict | None, bool]] = {
    "top-k": (None, True),
    "top-k-static": (None, False),
    **{f"mmr-{theta}": ({"diversifier": "mmr", "theta": theta}, True) for theta in (0.9, 0.7, 0.5)},
    **{
        f"calibration-{lam}": ({"diversifier": "calibration", "calibration_lambda": lam}, True)
        for lam in (0.2, 0.5, 0.8)
    },
    **{f"softmax-{t}": ({"sampler": "softmax", "temperature": t}, True) for t in (0.5, 1.0, 2.0)},
    "epsilon-0.1": ({"sampler": "epsilon", "epsilon": 0.1}, True),
    **{f"thompson-{n}": ({"sampler": "thompson", "prior_strength": n}, True) for n in (10, 100)},
}

COLUMNS = (
    ("clicks_per_impression", "clicks/imp", "{:.3f}"),
    ("expected_clicks_per_impression", "expected/imp", "{:.3f}"),
    ("regret", "regret", "{:.3f}"),
    ("category_entropy_shown", "entropy shown", "{:.2f}"),
    ("category_entropy_clicked", "entropy clicked", "{:.2f}"),
    ("coverage", "coverage", "{:.2f}"),
    ("fresh_share_shown", "fresh shown", "{:.2f}"),
    ("fresh_clicks", "fresh clicks", "{:d}"),
    ("drifted_expected_share", "drifted/oracle", "{:.3f}"),
    ("days_to_follow", "days to follow", "{}"),
    ("latency_ms_p50", "p50 ms", "{:.1f}"),
)


def table(results: dict[str, dict]) -> str:
    lines = [
        "| variant | " + " | ".join(title for _, title, _ in COLUMNS) + " | first day clicks/imp | last day |",
        "|---|" + "---|" * (len(COLUMNS) + 2),
    ]
    for name, result in results.items():
        summary, days = result["summary"], result["days"]
        cells = ["-" if summary.get(key) is None else form.format(summary[key]) for key, _, form in COLUMNS]
        cells += [f"{days[0]['clicks_per_impression']:.3f}", f"{days[-1]['clicks_per_impression']:.3f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--users", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", default=None, help="variants to run (default: all)")
    parser.add_argument("--from-work", action="store_true", help="only print the table of WORK's results")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    folder = args.work / "pipelines"
    folder.mkdir(parents=True, exist_ok=True)
    results = {}
    for name, (settings, online) in VARIANTS.items():
        if args.only and name not in args.only:
            continue
        out = args.work / name
        if args.from_work:
            if (out / SIMULATION_FILE).exists():
                results[name] = json.loads((out / SIMULATION_FILE).read_text())
            continue
        pipeline = None
        if settings is not None:
            pipeline = folder / f"{name}.yaml"
            pipeline.write_text(yaml.safe_dump({"name": name, "pool": 200, **settings}, sort_keys=False))
        results[name] = run_simulation(
            args.run, args.data, out, args.days, pipeline, args.seed, args.users, static=not online
        )
        print(f"{name}: {results[name]['seconds']} s", flush=True)
    print(table(results))


if __name__ == "__main__":
    main()
