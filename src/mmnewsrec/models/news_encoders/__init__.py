"""News encoders: per-news inputs (tokens, pixels, frozen vectors) -> one vector per news.

Every encoder takes a dict of per-news tensors gathered by :class:`~mmnewsrec.batching.features.NewsFeatures`
and returns ``(U, dim)`` vectors. ``inputs()`` names the features it reads; ``feature_needs()``
declares, from its config alone, the cached features those are built from (one planner in the
features layer turns them into builders); ``pretrained_parameters()`` the parameters that came
from a pretrained backbone (they get their own learning rate).

One module per family: ``text``, ``vision``, ``precomputed``, ``word``, ``fusion``, ``blip``;
``backbone`` holds the backbone handling and pooling they share. A new encoder is one module that
registers itself in :data:`NEWS_ENCODERS` (imported here, or by whoever registers it).
"""

from mmnewsrec.features.plan import lower_states_feature as cached_states_feature
from mmnewsrec.models.news_encoders.backbone import load_backbone, run_top_layers
from mmnewsrec.models.news_encoders.base import NEWS_ENCODERS, ModelContext, NewsEncoder, build_news_encoder
from mmnewsrec.models.news_encoders.blip import BlipEncoder
from mmnewsrec.models.news_encoders.fusion import FusionEncoder
from mmnewsrec.models.news_encoders.precomputed import PrecomputedEncoder
from mmnewsrec.models.news_encoders.text import TextEncoder
from mmnewsrec.models.news_encoders.vision import VisionEncoder
from mmnewsrec.models.news_encoders.word import WordEncoder

__all__ = [
    "NEWS_ENCODERS",
    "BlipEncoder",
    "FusionEncoder",
    "ModelContext",
    "NewsEncoder",
    "PrecomputedEncoder",
    "TextEncoder",
    "VisionEncoder",
    "WordEncoder",
    "build_news_encoder",
    "cached_states_feature",
    "load_backbone",
    "run_top_layers",
]
