"""A synthetic dataset in exact MIND format, drawn from a known click model.

Real MIND may not be redistributed, so this generator is the built-in default dataset. It exercises
what real MIND exercises and lets every model be compared against a ceiling:

* categories and subcategories; titles and abstracts whose *words* carry the topic (topic-specific
  vocabularies mixed with common words), so a text encoder has to read them;
* users whose latent interests drive their clicks (history and impressions), empty histories,
  impressions of 2 to 300 candidates with about 4% clicks, popularity that drifts as news age;
* images for about 44% of news, whose colour and shape follow the category and subcategory and
  whose brightness carries a "visual appeal" that raises clicks and appears nowhere in the text;
* "hook" words in titles of intrinsically popular news: most of a news item's popularity can be
  read from its title.

Ground truth. With user interest ``z_u`` and news topic ``e_i`` (unit vectors), base popularity
``q_i``, age ``a`` in days at impression time and visual appeal ``v_i`` (0 without an image)::

    logit p(click | u, i, t) = bias + 5.0 z_u.e_i + 0.8 (q_i - 0.1 a) + 0.7 v_i

``bias`` is calibrated so that about 4% of shown candidates are clicked. Every impression of the
logs has at least one click (as in MIND): labels are redrawn for click-less impressions, and after
a few tries one candidate is chosen in proportion to ``p``. The generator writes each dev and test
candidate's ``p`` to ``oracle_probs.tsv`` in the split folder, so an oracle baseline gives the
ceiling any model can reach on the data.
"""

from mmnewsrec.data.synthetic.ebnerd import FORMATS, generate, generate_ebnerd
from mmnewsrec.data.synthetic.entities import SyntheticEntities, attach_entities, draw_entities
from mmnewsrec.data.synthetic.render import draw_image, news_texts
from mmnewsrec.data.synthetic.sampling import calibrate_bias, draw_labels, sample_histories, sample_impressions
from mmnewsrec.data.synthetic.world import (
    CATEGORY_WORDS,
    COMMON_WORDS,
    HISTORY_DAYS,
    HOOK_WORDS,
    PARAMETERS,
    PRESETS,
    SCALES,
    SPLIT_DAYS,
    ClickModel,
    Preset,
    SynthScale,
    World,
    WorldParameters,
    build_world,
    hook_popularity,
    sigmoid,
)
from mmnewsrec.data.synthetic.writer import (
    GENERATOR_VERSION,
    ORACLE_FILE,
    SUMMARY_FILE,
    SynthSummary,
    generate_mind,
    read_oracle_probs,
)

__all__ = [
    "FORMATS",
    "generate",
    "generate_ebnerd",
    "SyntheticEntities",
    "attach_entities",
    "draw_entities",
    "CATEGORY_WORDS",
    "COMMON_WORDS",
    "GENERATOR_VERSION",
    "HISTORY_DAYS",
    "HOOK_WORDS",
    "ORACLE_FILE",
    "PARAMETERS",
    "PRESETS",
    "SCALES",
    "SPLIT_DAYS",
    "SUMMARY_FILE",
    "ClickModel",
    "Preset",
    "SynthScale",
    "SynthSummary",
    "World",
    "WorldParameters",
    "build_world",
    "calibrate_bias",
    "draw_image",
    "draw_labels",
    "generate_mind",
    "hook_popularity",
    "news_texts",
    "read_oracle_probs",
    "sample_histories",
    "sample_impressions",
    "sigmoid",
]
