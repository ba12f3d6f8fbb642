"""Large batches in parallel with Ray: local by default, a running cluster when an address is given.

Each Ray actor loads the model once (from a model directory visible to the worker, or an MLflow URI) and
predicts chunks; the driver reports progress as chunks come back and keeps the input order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)


def predict_ray(items: Sequence[Any], *, model: str | None = None, address: str | None = None,
                workers: int | None = None, chunk: int = 5000, temperature_K: float | str | None = None,
                on_error: str = "skip", progress: Callable[[int], None] | None = None) -> list[dict]:
    """Predict ``items`` (formulas or CIF paths) on Ray; returns one dict per item (``PredictionResult.to_dict``
    or ``{"input", "error"}``), in input order.

    Args:
        model: model directory or MLflow URI (default: the bundled model); must be readable by every worker.
        address: Ray cluster address (e.g. "ray://head:10001" or "auto"); None starts a local Ray.
        workers: number of actors (default: the CPUs Ray reports).
        chunk: items per task.
        progress: called with the number of items finished after each chunk.
    """
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        kwargs = {"include_dashboard": False, "log_to_driver": False, "ignore_reinit_error": True}
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=workers, **kwargs)
    try:
        n_workers = workers or max(1, int(ray.available_resources().get("CPU", 1)))

        @ray.remote(num_cpus=1)
        class _Worker:
            def __init__(self, source):
                from serving.predictor import Predictor

                self.p = Predictor.load(source)

            def predict(self, start, part):
                res = self.p.predict_many(part, on_error=on_error, temperature_K=temperature_K)
                return start, [r.to_dict() for r in res]

        actors = [_Worker.remote(model) for _ in range(n_workers)]
        chunks = [(i, list(items[i:i + chunk])) for i in range(0, len(items), chunk)]
        pending = [actors[k % n_workers].predict.remote(i, part) for k, (i, part) in enumerate(chunks)]
        out: list[dict | None] = [None] * len(items)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            start, rows = ray.get(done[0])
            out[start:start + len(rows)] = rows
            if progress:
                progress(len(rows))
        return out  # type: ignore[return-value]
    finally:
        if started_here:
            ray.shutdown()
