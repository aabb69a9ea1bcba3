"""Speed benchmarks, run by ``dynoai-lab bench NAME``.

Each benchmark is a module here with a ``run(**options) -> dict``
function; the command prints progress lines, then the returned figures
as one JSON line last, so scripts can read them with ``tail -n 1``.
Figures depend on the machine: ``docs/benchmarks.md`` records each with
the command and the hardware it ran on.
"""

import importlib
import pkgutil


def benchmark_names():
    """Return the names of the available benchmarks."""
    return sorted(
        module.name
        for module in pkgutil.iter_modules(__path__)
        if not module.name.startswith("_")
    )


def run_benchmark(name, **options):
    """Run one benchmark by name and return its figures."""
    if name not in benchmark_names():
        raise ValueError(
            f"unknown benchmark {name!r}; available: {benchmark_names()}"
        )
    module = importlib.import_module(f"{__name__}.{name}")
    return module.run(**options)
