"""sam-peft-bench: parameter-efficient fine-tuning of Segment Anything, reproduced and compared.

Layers, lowest first; a layer imports only those below it (``methods/`` and ``metrics/``, beside
this package, stand on ``core`` alone):

- ``core``: errors, registries, atomic writes, option parsing.
- ``data``: domains, readers of the official layouts, synthetic data, downloads.
- ``model``: SAM/SAM2 backbones and the interface methods use, the prompt-free head, checkpoints.
- ``train``: mixed precision, losses, the one-run engine, DDP, the resumable grid.
- ``report``: labels, table layouts, aggregation, renderers, compare, report, published numbers.
- ``perf``: benchmarks (``sam-peft-bench bench ...``).
- here: the command line (``cli``), and the commands that join layers (``listing``, ``params``).
"""

__version__ = "0.1.0"
