"""Rendering the world as MIND content: titles, abstracts and images."""

from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image, ImageDraw

from mmnewsrec.data.synthetic.world import (
    CATEGORY_WORDS,
    COMMON_WORDS,
    HOOK_WORDS,
    PARAMETERS,
    World,
    WorldParameters,
    sigmoid,
)

SHAPES = ("circle", "square", "triangle", "diamond", "cross", "ring", "bars")


def news_texts(
    world: World, subcats: list, rng: np.random.Generator, params: WorldParameters = PARAMETERS
) -> tuple[list[str], list[str]]:
    """A title and an abstract per news: its subcategory's and category's words, common words and,
    in titles, its hook words."""
    (t_sub, t_cat, t_common), (a_sub, a_cat, a_common) = params.title_words, params.abstract_words
    titles, abstracts = [], []
    categories = list(CATEGORY_WORDS)
    for i in range(len(world.subcategory)):
        _, _, sub_words = subcats[world.subcategory[i]]
        cat_words = CATEGORY_WORDS[categories[world.category[i]]]
        title = list(rng.choice(sub_words, size=rng.integers(*t_sub)))
        title += list(rng.choice(cat_words, size=rng.integers(*t_cat)))
        title += list(rng.choice(COMMON_WORDS, size=rng.integers(*t_common)))
        title += list(rng.choice(HOOK_WORDS, size=world.hooks[i], replace=False))
        rng.shuffle(title)
        titles.append(" ".join(title).capitalize())
        if rng.random() < params.empty_abstract_fraction:  # some MIND abstracts are empty
            abstracts.append("")
            continue
        abstract = list(rng.choice(sub_words, size=rng.integers(*a_sub)))
        abstract += list(rng.choice(cat_words, size=rng.integers(*a_cat)))
        abstract += list(rng.choice(COMMON_WORDS, size=rng.integers(*a_common)))
        rng.shuffle(abstract)
        abstracts.append(" ".join(abstract).capitalize() + ".")
    return titles, abstracts


def draw_image(world: World, i: int, n_categories: int, size: int, rng: np.random.Generator) -> Image.Image:
    hue = world.category[i] / n_categories
    background = tuple(int(255 * c) for c in colorsys.hsv_to_rgb(hue, 0.55, 0.85))
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    brightness = float(sigmoid(1.5 * world.appeal[i]))  # visual appeal shows as a brighter motif
    tone = int(40 + 215 * brightness)
    colour = (tone, tone, int(tone * 0.8))
    shape = SHAPES[world.subcategory[i] % len(SHAPES)]
    jitter = rng.integers(-size // 10, size // 10 + 1, size=2)
    cx, cy = size // 2 + jitter[0], size // 2 + jitter[1]
    r = size // 3
    box = (cx - r, cy - r, cx + r, cy + r)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    elif shape == "diamond":
        draw.polygon([(cx, cy - r), (cx - r, cy), (cx, cy + r), (cx + r, cy)], fill=colour)
    elif shape == "cross":
        draw.rectangle((cx - r, cy - r // 3, cx + r, cy + r // 3), fill=colour)
        draw.rectangle((cx - r // 3, cy - r, cx + r // 3, cy + r), fill=colour)
    elif shape == "ring":
        draw.ellipse(box, outline=colour, width=max(2, r // 3))
    else:
        for k in range(-1, 2):
            draw.rectangle((cx - r, cy + k * r // 2 - r // 8, cx + r, cy + k * r // 2 + r // 8), fill=colour)
    return image
