"""The spelling ``spikeDE`` of :mod:`spikede`: ``import spikeDE`` returns the same module object."""

import sys

import spikede

sys.modules[__name__] = spikede
