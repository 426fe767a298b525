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
perfect news encoder with a mean-pooling user encoder), and with the Bayes posterior of the
interest vector given the history, the ceiling of any history-based model that reads the text:

* ``text-visible, true interests`` and ``text-visible, interests from history``;
* ``topic only, interests from history``;
* ``text-visible, Bayes posterior from history``: the prior is the world's own distribution of
  interest vectors (a sample of them), the likelihood of a history click in subcategory ``s`` is
  proportional to ``s``'s share of the news times the mean click probability of ``s`` (over hook
  counts), and each candidate is scored by its posterior-mean click probability. This is the best
  ranking a model can reach from a history's topics plus a title's hook words, up to the
  approximations of that likelihood (the history pool's draws without replacement and the noise in
  popularity are ignored).
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np

from mmnewsrec.data import synthetic as S
from mmnewsrec.evaluation.analysis import HISTORY_GROUPS, group_of, impression_metrics
from mmnewsrec.evaluation.metrics import ranking_metrics


def rebuild_world(scale_name: str, seed: int, preset_name: str):
    """The world ``mmnewsrec synth --scale S --seed N --preset P`` draws first (its news, users and
    entities), with its click bias calibrated as the generator does; returns (world, model, params, rng)."""
    scale, preset = S.SCALES[scale_name], S.PRESETS[preset_name]
    model, params = preset.click_model, preset.params
    rng = np.random.default_rng(seed)
    world, subcats = S.build_world(scale, model, rng, params)  # the same world generate_mind builds first
    S.attach_entities(world, [name for _, name, _ in subcats], model.entity, seed)  # its entities too
    calibration = S.sample_impressions(
        world,
        scale,
        model,
        min(params.calibration_impressions, scale.train_impressions),
        S.SPLIT_DAYS["train"],
        rng,
        params,
    )
    world.bias = S.calibrate_bias(world, calibration, model)
    return world, model, params, rng


def topic_centroids(world) -> np.ndarray:
    """Each subcategory's mean topic, normalised. Shape: (S, d)."""
    centroids = np.zeros((world.subcategory.max() + 1, world.topic.shape[1]), dtype=np.float32)
    np.add.at(centroids, world.subcategory, world.topic)
    return centroids / np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", default="medium", choices=sorted(S.SCALES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", default="default", choices=sorted(S.PRESETS))
    parser.add_argument("--impressions", type=int, default=4000)
    parser.add_argument("--data", type=Path, default=None, help="also score this dataset's dev split")
    args = parser.parse_args()
    world, model, params, rng = rebuild_world(args.scale, args.seed, args.preset)
    scale = S.SCALES[args.scale]
    sample = S.sample_impressions(world, scale, model, args.impressions, S.SPLIT_DAYS["dev"], rng, params)
    owner, news = sample["owner"], sample["news"]
    users, day = sample["users"][owner], sample["day"][owner]
    probs = S.sigmoid(world.logits(users, news, day, model))
    labels = S.draw_labels(probs, owner, args.impressions, rng)
    offsets = sample["offsets"]

    subcat = world.subcategory
    centroids = topic_centroids(world)
    topic = model.affinity * np.einsum("nd,nd->n", world.user_interest[users], centroids[subcat[news]])
    hooks = model.popularity * S.hook_popularity(world.hooks[news], params)  # the title-visible part of popularity
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
        print_history_ceilings(args.data, world, model, centroids, params)


def bayes_posterior_scores(
    counts: np.ndarray,
    candidate_owner: np.ndarray,
    candidate_subcats: np.ndarray,
    candidate_hooks: np.ndarray,
    world,
    model,
    centroids: np.ndarray,
    prior_samples: int = 20_000,
) -> np.ndarray:
    """Posterior-mean click probability of each candidate given its impression's history topics.

    Args:
        counts: (I, S) clicks per subcategory in each impression's history.
        candidate_owner: (C,) the impression (row of ``counts``) of each candidate.
        candidate_subcats / candidate_hooks: (C,) per candidate.
    Returns:
        (C,) scores.
    """
    rng = np.random.default_rng(1)
    prior_samples = min(prior_samples, len(world.user_interest))
    prior = world.user_interest[rng.choice(len(world.user_interest), prior_samples, replace=False)]  # (M, d)
    affinity = model.affinity * prior.astype(np.float64) @ centroids.T  # (M, S)
    share = np.bincount(world.subcategory, minlength=centroids.shape[0]) / len(world.subcategory)  # (S,)
    # Mean popularity term per hook count: the part of popularity a title shows.
    pop = np.array([model.popularity * world.base_pop[world.hooks == h].mean() for h in range(3)])  # (3,)
    hook_share = np.array([(world.hooks == h).mean() for h in range(3)])  # (3,)
    click = [S.sigmoid(world.bias + affinity + pop[h]) for h in range(3)]  # 3 x (M, S)
    likelihood = np.log(share)[None, :] + np.log(sum(w * p for w, p in zip(hook_share, click, strict=True)))  # (M, S)
    likelihood -= np.logaddexp.reduce(likelihood, axis=1, keepdims=True)
    per_row = np.zeros((3, len(counts), centroids.shape[0]))  # (3, I, S)
    for start in range(0, len(counts), 2000):
        log_post = counts[start : start + 2000] @ likelihood.T  # (u, M)
        post = np.exp(log_post - log_post.max(axis=1, keepdims=True))
        post /= post.sum(axis=1, keepdims=True)
        for h in range(3):
            per_row[h, start : start + 2000] = post @ click[h]
    return per_row[candidate_hooks, candidate_owner, candidate_subcats]


def history_ceilings(data: Path, world, model, centroids: np.ndarray, params) -> dict:
    """The history-based ceilings on the dev split of ``data`` (see the module's doc): a dict with
    ``summary`` (a line about the split) and ``rankings`` (name -> (scores, labels, offsets, groups))."""
    from mmnewsrec.config import DataConfig
    from mmnewsrec.data.mind import load_mind
    from mmnewsrec.data.synthetic.world import START

    loaded = load_mind(data, DataConfig(root=str(data)), splits=("train", "dev"))
    dev, train = loaded["dev"], loaded["train"]

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
    hooks = model.popularity * S.hook_popularity(world.hooks[news], params)
    counts = np.zeros((len(users), centroids.shape[0]))  # (I, S) history clicks per subcategory
    np.add.at(counts, (hist_owner, world.subcategory[hist]), 1)
    bayes = bayes_posterior_scores(counts, owner, world.subcategory[news], world.hooks[news], world, model, centroids)
    # What the training clicks can reveal: for news already shown in training, their whole appeal
    # (popularity beyond what the title shows, and image appeal), as if their click rate had been
    # measured exactly; for every news, its age (first seen in the logs: about its publish time).
    shown = np.isin(news, rows(train.flat_candidates()))
    by_hooks = np.array([world.base_pop[world.hooks == h].mean() for h in range(3)])
    hidden = model.popularity * (world.base_pop[news] - by_hooks[world.hooks[news]]) + model.appeal * world.appeal[news]
    start = (START - dt.datetime(1970, 1, 1)).total_seconds()  # log times are naive seconds since 1970
    day = (dev.behaviors["time"].cast("int64").to_numpy()[owner] - start) / 86400.0
    age = np.maximum(day - world.publish_day[news], 0.0)
    groups = group_of(np.diff(hist_offsets), HISTORY_GROUPS)
    revealed = np.log(bayes) - np.log1p(-bayes) + shown * hidden - model.popularity * model.age_decay_per_day * age
    summary = (
        f"{data} dev split, {len(users):,} impressions, mean history {len(hist) / len(users):.1f}, "
        f"{shown.mean():.1%} of candidates shown in train"
    )
    rankings = {
        "text-visible, true interests": true_topic + hooks,
        "text-visible, interests from history": inferred_topic + hooks,
        "topic only, interests from history": inferred_topic,
        "text-visible, Bayes posterior from history": bayes,
        "+ what training clicks reveal (appeal, age)": revealed,
    }
    return {"summary": summary, "rankings": rankings, "labels": labels, "offsets": offsets, "groups": groups}


def print_history_ceilings(data: Path, world, model, centroids: np.ndarray, params) -> None:
    found = history_ceilings(data, world, model, centroids, params)
    labels, offsets, groups = found["labels"], found["offsets"], found["groups"]
    labels_present = [label for label, _, _ in HISTORY_GROUPS if np.any(groups == label)]
    print(found["summary"])
    for name, scores in found["rankings"].items():
        metrics = ranking_metrics(scores, labels, offsets)
        print(f"{name:44s} AUC {metrics.auc:.4f}  MRR {metrics.mrr:.4f}  nDCG@10 {metrics.ndcg10:.4f}")
        auc = impression_metrics(scores, labels, offsets)[:, 0]  # by history length, as `mmnewsrec report`
        cells = [f"{label} {np.nanmean(auc[groups == label]):.4f}" for label in labels_present]
        print(f"{'':44s} by history length: " + "  ".join(cells))


def dataset_ceilings(data: Path, scale: str, seed: int, preset: str) -> dict[str, float]:
    """Dev AUC of the two history-based ceilings of a dataset written by ``synth`` with these
    settings: ``text`` (the Bayes posterior of the interests from the history's topics, with the
    title-visible popularity) and ``clicks`` (the same plus what the training clicks reveal: the
    appeal of news shown in training, and age)."""
    world, model, params, _ = rebuild_world(scale, seed, preset)
    found = history_ceilings(data, world, model, topic_centroids(world), params)
    names = {
        "text": "text-visible, Bayes posterior from history",
        "clicks": "+ what training clicks reveal (appeal, age)",
    }
    return {
        key: float(ranking_metrics(found["rankings"][name], found["labels"], found["offsets"]).auc)
        for key, name in names.items()
    }


if __name__ == "__main__":
    main()
