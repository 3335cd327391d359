"""Benchmarks: speed and memory of the pipeline, measured side by side with a peer.

Nothing here runs under `make test`; see README.md "Benchmarks" and docs/performance.md.
"""
