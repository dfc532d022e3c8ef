"""The core every other layer stands on: errors, registries, atomic writes, option parsing, file digests.

Imports nothing from the rest of the suite (torch neither), so ``methods/`` and ``metrics/``
depend on it alone and the layers above (model, data, train, report) may all use it.
"""
