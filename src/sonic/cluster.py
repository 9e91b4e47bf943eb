"""A Ray cluster for the jobs that outgrow one machine (``--engine ray``): import and connect.

Ray is an optional extra (``pip install 'sonic[ray]'``), imported only here and only when asked for.
:func:`connected` joins the cluster at ``address`` (``"auto"``: the one started on this node with
``ray start``; ``"ray://host:10001"``: a remote head through Ray Client) or, with no address, starts a
local instance for the run; a Ray already initialised in this process (a notebook, a test) is used as
it is. Only an instance started here is shut down afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sonic.errors import SonicError

#: The engines a folder job or a study's runs can use.
ENGINES = ("local", "ray")
#: How the optional extra is installed, said by every message about a missing Ray.
INSTALL = "pip install 'sonic[ray]'"


def check_engine(engine: str) -> str:
    """``engine`` if it is known, else one sentence listing the known ones."""
    if engine not in ENGINES:
        raise SonicError(f"unknown engine {engine!r}; known: {', '.join(ENGINES)}")
    return engine


def import_ray() -> Any:
    """The ``ray`` module, or a :class:`SonicError` saying in one sentence how to install it."""
    try:
        import ray
    except ModuleNotFoundError as error:
        if error.name != "ray":
            raise
        raise SonicError(f"the ray engine needs Ray, which is not installed; {INSTALL}") from None
    return ray


@contextlib.contextmanager
def connected(address: str | None = None) -> Iterator[Any]:
    """The ``ray`` module, connected to the cluster at ``address`` (None: a local instance, or the Ray
    this process already initialised) for the duration of the block."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    try:
        ray.init(address=address, include_dashboard=False, logging_level="WARNING", log_to_driver=True)
    except ConnectionError as error:
        raise SonicError(f"cannot reach the Ray cluster at {address!r}: {str(error).splitlines()[0]}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def cluster_resources(ray: Any) -> dict[str, float]:
    """CPUs and GPUs of the whole cluster (``{"CPU": n, "GPU": m}``, 0 when absent)."""
    resources = ray.cluster_resources()
    return {"CPU": float(resources.get("CPU", 0)), "GPU": float(resources.get("GPU", 0))}
