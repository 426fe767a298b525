"""Every experiment config in configs/ loads, and runs end to end with its models swapped for tiny ones.

The configs name the real pretrained models (bert-base-uncased, google/vit-base-patch16-224,
Salesforce/blip-itm-base-coco) for users' machines; here the same configs run with the model
names overridden to tiny random-initialised models of the same classes, on tiny synthetic data.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mmnewsrec.config import ExperimentConfig, TransformerRankerConfig, load_yaml
from mmnewsrec.workflows.train import run_train

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
EXPERIMENTS = sorted(p.stem for p in CONFIGS.glob("*.yaml") if p.stem != "featurize_minilm")


def tiny_overrides(name: str, bert: Path, vit: Path, blip: Path) -> list[str]:
    small = [
        "model.news.dim=32",
        "model.user.heads=4",
        "model.user.query_dim=16",
        "training.max_steps=2",
        "training.batch_size=8",
        "training.grad_accum=1",
        "training.eval_impressions=40",
        "training.eval_batch_size=64",
    ]
    swaps = {
        "exp1_blip_frozen": [f"features.frozen=[{{name: blip, model: '{blip}', modality: blip, max_length: 16}}]"],
        "exp2_bert_vit_frozen": [
            f"features.frozen=[{{name: bert_cls, model: '{bert}', max_length: 16}},"
            f" {{name: vit_cls, model: '{vit}', modality: image}}]"
        ],
        "exp3_bert_vit_finetune": [f"model.news.text.model={bert}", f"model.news.image.model={vit}"],
        "exp4_bert_finetune": [f"model.news.text.model={bert}"],
        "exp4_bert_fast": [f"model.news.text.model={bert}", "model.news.text.train_layers=1"],
        "exp4_bert_lora": [f"model.news.text.model={bert}"],
        "nrms_word": ["model.news.heads=4", "model.news.word_dim=16"],  # its shipped tokenizer, offline
        "random": [],
        # Offline as shipped: the real MiniLM weights and the scratch ViT need no swap.
        "demo_multimodal_minilm_vit": [],
        "demo_text_minilm": [],
        "text_minilm": [],
        "text_minilm_popularity": [],
        # EB-NeRD's precomputed vectors: the synthetic bundle's artifacts, read as shipped.
        "ebnerd_text": [],
        "ebnerd_multimodal": [],
        "ebnerd_text_popularity": [],
        "xmind_text": [f"features.frozen=[{{name: multilingual, model: '{bert}', pooling: mean, max_length: 16}}]"],
        "ranker_nrms_listwise": [],
        "ranker_nrms_pointwise": [],
        "ranker_study_listwise": [],
        "ranker_study_pointwise": [],
    }
    swaps["exp1_blip_frozen_study_ranker"] = swaps["exp1_blip_frozen"]
    swaps["exp2_bert_vit_frozen_study_ranker"] = swaps["exp2_bert_vit_frozen"]
    if "study" in name:  # the tiny features are not 768 wide: project them, and shrink the Transformer
        small += [
            "model.news.projection=linear",
            "model.transformer={d_model: 16, heads: 4, layers: 2, feedforward: 32, hidden: [8, 4]}",
        ]
    if name.startswith("ranker_nrms"):
        small.remove("model.news.dim=32")  # frozen MiniLM as it is: 384 values
    return small + swaps[name]


def test_every_config_is_covered() -> None:
    assert EXPERIMENTS == [
        "demo_multimodal_minilm_vit",
        "demo_text_minilm",
        "ebnerd_multimodal",
        "ebnerd_text",
        "ebnerd_text_popularity",
        "exp1_blip_frozen",
        "exp1_blip_frozen_study_ranker",
        "exp2_bert_vit_frozen",
        "exp2_bert_vit_frozen_study_ranker",
        "exp3_bert_vit_finetune",
        "exp4_bert_fast",
        "exp4_bert_finetune",
        "exp4_bert_lora",
        "nrms_word",
        "random",
        "ranker_nrms_listwise",
        "ranker_nrms_pointwise",
        "ranker_study_listwise",
        "ranker_study_pointwise",
        "text_minilm",
        "text_minilm_popularity",
        "xmind_text",
    ]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_config_runs_with_tiny_models(
    name: str, tiny_mind: Path, tiny_ebnerd: Path, tiny_xmind: Path, tiny_bert, tiny_vit, tiny_blip, tmp_path: Path
) -> None:
    path = CONFIGS / f"{name}.yaml"
    study = load_yaml(ExperimentConfig, path)  # as shipped: the study's set-up and real model names
    if name.endswith("study_ranker"):  # pointwise over each click and 24 non-clicks, the study's ratio
        assert (study.training.negatives, study.training.history_len) == (24, 50)
        assert study.model.transformer == TransformerRankerConfig() and study.training.class_weights == (1.0, 25.0)
        assert study.model.news.projection == "none" and study.model.news.dim == 768
    elif name.startswith("ranker_"):  # the four-way ranker x objective comparison, sized for 2 cores
        assert (study.training.negatives, study.training.history_len, study.training.max_steps) == (4, 20, 1500)
    elif not study.baseline:
        assert (study.training.negatives, study.training.history_len) == (4, 50)
    if name.startswith(("exp", "nrms")):  # the study's effective batch (the others are tuned for 2 cores)
        assert study.training.batch_size * study.training.grad_accum in (128, 32)
    config = load_yaml(
        ExperimentConfig,
        path,
        [
            f"data.root={tiny_ebnerd if name.startswith('ebnerd') else tiny_mind}",
            f"features.cache_dir={tmp_path / 'cache'}",
            *tiny_overrides(name, tiny_bert, tiny_vit, tiny_blip),
            *([f"data.translations={tiny_xmind}"] if name.startswith("xmind") else []),
        ],
    )
    record = run_train(config, run_dir=tmp_path / "run")
    assert 0.0 < record["auc"] < 1.0 and record["impressions"] > 0
    assert (tmp_path / "run" / "config.yaml").is_file() and (tmp_path / "run" / "metrics.json").is_file()
