"""Building blocks of ``bench/query_latency.py``: data set, databases, server, timing, report."""
