"""The benchmark harness: ``python -m bench run`` (see ``bench/__main__.py`` and docs/benchmarks.md)."""
