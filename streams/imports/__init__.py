"""Outside data in: BODS ownership registers and procurement/AP CSV exports become events.

Each importer turns its input into CloudEvents lines for the one decoder
(`streams.events.decode`), with stable ids so that importing the same input again is a
no-op (the engine's `(source, id)` idempotency), and says what it did not turn into an
event and why (docs/ingest.md).
"""
