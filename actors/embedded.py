"""The embedded Ray of one machine (``harness bench`` without ``--address``, tests, perf): on
loopback only, token authentication on, no dashboard UI, no metrics export.

Ray 2.60 binds its gRPC servers (GCS, raylet, workers, object manager) to all interfaces
unless the node address is exactly ``127.0.0.1``, and turns a ``127.0.0.1`` given to
``ray.init`` into the machine's external address while Ray clusters are enabled (on Linux,
always). Disabling them (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, exported so that Ray's own
processes and the harness's workers inherit it) keeps the node address on loopback, and every
server then listens on ``127.0.0.1`` only. ``enable_metrics_collection = false`` removes the
dashboard agent's Prometheus endpoint. Two processes remain that Ray starts whatever it is
told: its API server (the dashboard process without its UI modules, serving no HTTP page) and
the autoscaler monitor; each serves a Prometheus page, on loopback. Token authentication is
Ray's default: the token lives in ``~/.ray/auth_token`` (user-wide), and a process without it
is refused (tests/test_ray_runtime.py).
"""

from __future__ import annotations

import os
from typing import Any

#: exported before Ray starts: Ray's processes and the harness's workers inherit it
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
SYSTEM_CONFIG = {"enable_metrics_collection": False}


def start_embedded(**kwargs: Any) -> str:
    """Start Ray on this machine, on loopback only; returns its GCS address."""
    os.environ.update(LOOPBACK_ENV)
    import ray
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False  # imported before the variable was set
    kwargs.setdefault("log_to_driver", False)
    ray.init(
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        _system_config=dict(SYSTEM_CONFIG),
        **kwargs,
    )
    return ray.get_runtime_context().gcs_address
