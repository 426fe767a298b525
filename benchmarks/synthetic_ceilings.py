"""How much of the synthetic click model each kind of model can see: AUC ceilings per information set.

Draws fresh dev-period impressions from the generator's ground truth (same world as ``mmnewsrec
synth --scale S --seed N``) and ranks them with the true click logit restricted to what a model
could know, *given the user's true interest vector*:

* ``oracle``: everything (the generator's ``oracle_probs.tsv``);
* ``text-visible``: subcategory topic + the popularity carried by hook words in the title;
* ``text+image-visible``: the above + the visual appeal that only the image shows;
* ``topic only``: subcategory topic alone.

Real models must also infer the interest vector from click histories, so they land below these.
With ``--data DIR`` (a dataset written by ``mmnewsrec synth`` with the same scale and seed) the
script also ranks that dataset's own dev split with an interest vector *inferred from each
user's click history* (the normalised mean of the true topic vectors of the clicked news: a
perfect news encoder with a mean-pooling user encoder), the ceiling of a history-based model:

* ``text-visible, true interests`` and ``text-visible, interests from history``;
* ``topic only, interests from history``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mmnewsrec.data import synthetic as S
from mmnewsrec.evaluation.metrics import ranking_metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", default="medium", choices=sorted(S.SCALES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--impressions", type=int, default=4000)
    parser.add_argument("--data", type=Path, default=None, help="also score this dataset's dev split")
    args = parser.parse_args()
    scale, model = S.SCALES[args.scale], S.ClickModel()
    rng = np.random.default_rng(args.seed)
    world, _ = S._build_world(scale, model, rng)  # the same world generate_mind builds first
    calibration = S._sample_impressions(
        world, scale, model, min(4000, scale.train_impressions), S.SPLIT_DAYS["train"], rng
    )
    world.bias = S._calibrate_bias(world, calibration, model)
    sample = S._sample_impressions(world, scale, model, args.impressions, S.SPLIT_DAYS["dev"], rng)
    owner, news = sample["owner"], sample["news"]
    users, day = sample["users"][owner], sample["day"][owner]
    probs = S._sigmoid(world.logits(users, news, day, model))
    labels = S._draw_labels(probs, owner, args.impressions, rng)
    offsets = sample["offsets"]

    subcat = world.subcategory
    centroids = np.zeros((subcat.max() + 1, world.topic.shape[1]), dtype=np.float32)
    np.add.at(centroids, subcat, world.topic)
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-9)
    topic = model.affinity * np.einsum("nd,nd->n", world.user_interest[users], centroids[subcat[news]])
    hooks = model.popularity * 0.9 * (world.hooks[news] - 0.5)  # the title-visible part of popularity
    appeal = model.appeal * world.appeal[news]
    rankings = {
        "oracle": probs,
        "text+image-visible": topic + hooks + appeal,
        "text-visible": topic + hooks,
        "topic only": topic,
    }
    print(f"synthetic {args.scale} (seed {args.seed}), {args.impressions:,} fresh dev impressions")
    for name, scores in rankings.items():
        metrics = ranking_metrics(scores, labels, offsets)
        print(f"{name:20s} AUC {metrics.auc:.4f}  MRR {metrics.mrr:.4f}  nDCG@10 {metrics.ndcg10:.4f}")
    if args.data is not None:
        history_ceilings(args.data, world, model, centroids)


def history_ceilings(data: Path, world, model, centroids: np.ndarray) -> None:
    from mmnewsrec.config import DataConfig
    from mmnewsrec.data.mind import load_mind

    dev = load_mind(data, DataConfig(root=str(data)), splits=("dev",))["dev"]

    def rows(ids) -> np.ndarray:  # synthetic ids are N{row + 1}
        return np.array([int(x[1:]) - 1 for x in ids.to_pylist()], dtype=np.int64)

    hist, hist_offsets = rows(dev.flat_history()), dev.history_offsets()
    news, offsets = rows(dev.flat_candidates()), dev.candidate_offsets()
    labels = dev.flat_labels()
    users = np.array([int(u[1:]) - 1 for u in dev.behaviors["user_id"].to_pylist()], dtype=np.int64)
    owner = np.repeat(np.arange(len(users)), np.diff(offsets))
    hist_owner = np.repeat(np.arange(len(users)), np.diff(hist_offsets))
    inferred = np.zeros((len(users), world.topic.shape[1]))
    np.add.at(inferred, hist_owner, world.topic[hist])
    inferred /= np.maximum(np.linalg.norm(inferred, axis=1, keepdims=True), 1e-9)  # empty history: zeros
    topic_vectors = centroids[world.subcategory[news]]
    true_topic = model.affinity * np.einsum("nd,nd->n", world.user_interest[users][owner], topic_vectors)
    inferred_topic = model.affinity * np.einsum("nd,nd->n", inferred[owner], topic_vectors)
    hooks = model.popularity * 0.9 * (world.hooks[news] - 0.5)
    print(f"{data} dev split, {len(users):,} impressions, mean history {len(hist) / len(users):.1f}")
    for name, scores in {
        "text-visible, true interests": true_topic + hooks,
        "text-visible, interests from history": inferred_topic + hooks,
        "topic only, interests from history": inferred_topic,
    }.items():
        metrics = ranking_metrics(scores, labels, offsets)
        print(f"{name:38s} AUC {metrics.auc:.4f}  MRR {metrics.mrr:.4f}  nDCG@10 {metrics.ndcg10:.4f}")


if __name__ == "__main__":
    main()
