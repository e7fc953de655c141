import sys

from neuronperf_core.cli import main

sys.exit(main())
