"""Ingest: parse and validate CDRs from any source, then store them idempotently.

Three sources turn their input into canonical mappings: ``voicecdr cdrs import`` (JSONL,
CSV and FreeSWITCH files: :mod:`.importer`, :mod:`.files`; Kamailio's acc exports:
:mod:`.kamailio`; Asterisk cdr_csv files: :mod:`.asterisk`, :mod:`.asterisk_calls`),
``POST /v1/cdrs`` and
``POST /v1/ingest/freeswitch`` (``api/ingest.py``; FreeSWITCH's mod_json_cdr documents are
mapped by :mod:`.freeswitch`). :mod:`.canonical` validates one record into a
:class:`voicecdr.models.Cdr` with field-specific errors, and :mod:`.core` stores batches
and answers with one summary shape.
"""
