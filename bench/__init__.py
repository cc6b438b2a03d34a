"""pocketstack benchmarks: drive a running cloud over HTTP only (no import of pocketstack)."""
