"""confbench: an open benchmarking harness for video-conferencing platforms."""

__version__ = "0.1.0"
