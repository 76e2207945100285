"""Building blocks of ``bench/scale.py``: data set, load generator, phases, report."""
