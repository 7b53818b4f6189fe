"""Benchmarks and fault campaigns: ``stakewatch bench`` and ``stakewatch chaos``.

Nothing the product runs imports this package (``tests/unit/test_layout.py`` holds it to
that): the worker, the API and the other commands never load it, nor the benchmark's peers
(faust-streaming and Quix Streams, the ``bench`` extra). ``generate`` makes the synthetic
streams the benchmarks, the fault campaigns and the tests feed.
"""
