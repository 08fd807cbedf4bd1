"""``restore bench``: the paper benchmarks in their release layouts, scored by the literature's
conventions. :mod:`.datasets` holds the table of datasets; :mod:`.runner` runs and scores."""
from .datasets import DATASETS, PUBLISHED, Convention, DatasetSpec, find_samples, get_dataset


def __getattr__(name):
    # Lazy: the CLI's --help lists the datasets without importing OpenCV and the metrics.
    if name in ("BenchReport", "run_bench", "score_pair"):
        from . import runner
        return getattr(runner, name)
    raise AttributeError(name)


__all__ = ["DATASETS", "PUBLISHED", "Convention", "DatasetSpec", "find_samples", "get_dataset",
           "BenchReport", "run_bench", "score_pair"]
