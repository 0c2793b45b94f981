"""The VitalBridge application: the ``vitalbridge`` command, the demo and the local stack runner.

This package is the composition root: it wires ``edge``, ``cloud`` and ``simulators`` together,
which never import each other.
"""

__all__: list[str] = []
