"""News encoders, user encoders, scorers and the recommender that composes them."""
