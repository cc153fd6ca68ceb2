"""Benchmark harness (issue 7): wall time and peak memory of the pipeline's stages on generated
worlds of 1M, 10M and 100M token rows, beside a bare DuckDB scan (the floor) and a plain pandas
version of the same features. Run `python -m bench.run --rows 1M`; see bench/README.md.
"""
