"""Streaming anomaly detection for factory sensors."""
