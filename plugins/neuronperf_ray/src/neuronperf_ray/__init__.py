"""neuronperf-ray: the runner "ray", each model copy a Ray actor on a Ray cluster (or a local
Ray started for the run), and evaluation sharded across the copies.

Use it through any backend: ``npf.torch.benchmark(index, inputs, runner="ray",
ray_address="auto", ray_placement="spread")``, or ``neuronperf benchmark ... --runner ray``.
See docs/distributed.md.
"""

__version__ = "0.1.0"
