"""Benchmarks of Desk under a real WSGI server; each module runs with ``python -m bench.NAME``."""
