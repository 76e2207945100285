"""Pieces of ``bench/rating_receipts.py``: templates, rating runs, receipt delivery runs."""
