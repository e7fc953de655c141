"""TEST DOUBLE of ``neuron-ls`` (the Neuron tools' device lister). Not the real thing.

The tests install it as an executable ``neuron-ls`` on PATH. ``neuron-ls --json-output``
prints one object per Neuron device of the machine ``$TORCH_NEURONX_DOUBLE_MACHINE``
describes (see torch_neuronx_double.py), with ``nc_count`` the NeuronCores the runtime
presents: logical ones where the machine has them (trn2, LNC from
``NEURON_LOGICAL_NC_CONFIG``, 2 by default). It reserves nothing.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main() -> int:
    if "--json-output" not in sys.argv[1:]:
        print("neuron-ls double: only --json-output is implemented", file=sys.stderr)
        return 2
    spec = json.loads(Path(os.environ["TORCH_NEURONX_DOUBLE_MACHINE"]).read_text())
    lnc = int(os.environ.get("NEURON_LOGICAL_NC_CONFIG") or 2) if spec["logical"] else 1
    per_device = spec["physical_cores"] // lnc
    devices = [
        {
            "neuron_device": d,
            "bdf": f"00:{0x1E + d:02x}.0",
            "connected_to": None,
            "nc_count": per_device,
            "neuroncore_ids": list(range(d * per_device, (d + 1) * per_device)),
            "memory_size": 34359738368,
            "neuron_processes": [],
        }
        for d in range(spec["devices"])
    ]
    print(json.dumps(devices, indent=4))
    return 0


if __name__ == "__main__":
    sys.exit(main())
