"""The desktop demonstration and its tools: not part of a unit on the counter.

- ``terminal``: ``micromance simulate``, two paired units side by side in a terminal
- ``private_broker``: a private mosquitto on a loopback port, for the simulator and the tests
"""
