"""One stack per region-targeted workload, and the frozen configuration that tunes it."""
