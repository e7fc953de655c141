"""One simulated Ray cluster for the whole test session (each start costs seconds): a head
node without NeuronCores and two nodes that declare 2 ``neuron_cores`` each, a custom
resource standing in for the NeuronCores Ray finds on an inf2/trn1 instance."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import models
import pytest

NEURON_NODES = 2


@pytest.fixture(scope="session")
def cluster() -> Iterator[Any]:
    import ray
    import ray.cloudpickle
    from ray.cluster_utils import Cluster

    # the actors cannot import the tests' helper module: it travels by value
    ray.cloudpickle.register_pickle_by_value(models)
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    cluster.neuron_nodes = [
        cluster.add_node(num_cpus=2, resources={"neuron_cores": 2}) for _ in range(NEURON_NODES)
    ]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    yield cluster
    ray.shutdown()
    cluster.shutdown()


@pytest.fixture
def connected(cluster: Any) -> Iterator[Any]:
    """The cluster, with this process connected to it before and after the test."""
    import ray

    if not ray.is_initialized():
        ray.init(address=cluster.address)
    yield cluster
    if not ray.is_initialized():
        ray.init(address=cluster.address)


def all_cores_free(timeout_s: float = 30.0) -> bool:
    """Whether every node's NeuronCores are free again, waiting up to ``timeout_s``: Ray
    hands a killed actor's resources back to its node a moment after the kill."""
    import ray

    total = ray.cluster_resources().get("neuron_cores", 0)
    deadline = time.monotonic() + timeout_s
    while ray.available_resources().get("neuron_cores", 0) < total:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def leftovers(timeout_s: float = 60.0) -> tuple[list[str], list[str]]:
    """The actors still alive and the placement groups not removed, once Ray has processed
    the kills (they are asynchronous): waits until there are none, or ``timeout_s``."""
    import ray
    from ray._private import state  # no dashboard in the test cluster: the GCS's own view

    deadline = time.monotonic() + timeout_s
    while True:
        actors = [a["ActorClassName"] for a in state.actors().values() if a["State"] != "DEAD"]
        groups = [
            g["strategy"]
            for g in ray.util.placement_group_table().values()
            if g["state"] != "REMOVED"
        ]
        if not (actors or groups) or time.monotonic() > deadline:
            return actors, groups
        time.sleep(0.2)
