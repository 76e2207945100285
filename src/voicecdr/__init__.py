"""voicecdr: a self-hostable voice call-detail-record service.

It answers NXCloud's voice record query API (``POST /api/voiceSms/getVoiceCdr``) and is the
system behind it: ingest from switches, storage, rating, receipts and a client SDK.
"""

__version__ = "0.1.0"
