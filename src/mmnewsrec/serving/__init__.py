"""Serving: a trained run answering requests (encode news, encode users, score candidates)."""

from mmnewsrec.serving.predictor import NewsRecord, Predictor

__all__ = ["NewsRecord", "Predictor"]
