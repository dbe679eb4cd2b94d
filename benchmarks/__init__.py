"""gmtnet's benchmarks: each module runs as ``python -m benchmarks.NAME`` or ``python benchmarks/NAME.py``
and writes its current result to benchmarks/results/."""
