"""Ingest: parse and validate CDRs from any source, then store them idempotently.

Sources (the JSONL importer today; the batch HTTP API and FreeSWITCH later) turn their
input into canonical mappings; :mod:`.canonical` validates one record into a
:class:`voicecdr.models.Cdr` with field-specific errors, and :mod:`.core` stores batches
and answers with one summary shape.
"""
