"""Background work: the rater prices CDRs, the sender delivers receipts.

Both run inside ``voicecdr serve`` by default and alone in ``voicecdr worker``; any number
of them may run at once against one database (claims are atomic), and each stops cleanly
between batches.
"""
