"""Feature store: tokenised text, resized images and frozen-backbone vectors, computed once per news."""
