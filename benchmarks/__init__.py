"""Side-by-side benchmarks of trident and dask.distributed (``python -m benchmarks``)."""
