"""Streaming anomaly detection for factory sensors.

``processor.anomaly.detector`` is mypyc's compiled build of detector.py when one built from today's
source is present, else detector.py itself (processor/anomaly/native.py decides; `native.implementation()`
says which).
"""
from processor.anomaly import native as _native

_native.install()
