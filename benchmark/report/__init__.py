"""From records to what people read: display labels, the published numbers (``paper``), loading
records, whether they are comparable with the published numbers (``provenance``), the tables,
``compare``, ``report``, the figures (``figures``, matplotlib, from records and saved predictions) and
the evaluation of prediction folders.

May import: ``benchmark.core``, ``benchmark.data`` (domains' labels), ``metrics``. Never torch
models or training: tables are pure functions of records.
"""
