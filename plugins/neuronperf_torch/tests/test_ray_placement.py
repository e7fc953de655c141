"""With the neuronperf-ray runner, Ray places each copy's actor and sets its device variable
(NEURON_RT_VISIBLE_CORES for its neuron_cores, CUDA_VISIBLE_DEVICES for its GPU): the
torch backend's copy setup must leave it as Ray set it, where a copy in a process of its own
otherwise gets the cores this machine's placement gives copy k."""

from __future__ import annotations

import pytest
from neuronperf_torch import devices

CONFIG = {"n_models": 2, "workers_per_model": 1, "pipeline_size": 2}


@pytest.mark.parametrize(
    ("device", "variable", "placement"),
    [
        ("neuron", "NEURON_RT_VISIBLE_CORES", ["0", "1", "2", "3"]),
        ("cuda", "CUDA_VISIBLE_DEVICES", ["0", "1"]),
    ],
)
def test_a_ray_actor_keeps_the_device_ray_gave_it(
    device: str, variable: str, placement: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, "7")  # as Ray sets it for the actor
    devices.CopySetup(device, "ray", 4, placement)(1, dict(CONFIG))
    assert devices.os.environ[variable] == "7"
    devices.CopySetup(device, "interpreters", 4, placement)(1, dict(CONFIG))
    assert devices.os.environ[variable] == ("2-3" if device == "neuron" else "1")
