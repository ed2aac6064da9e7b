"""confbench: an open benchmarking harness for video-conferencing platforms.

The folders are the layers (docs/architecture.md; tests/test_layering.py checks the directions): entry points
here (``cli``, ``pytest_plugin``, ``errors``), then ``report``, ``orchestrate``, ``loadgen``, ``host`` and
``browser``, ``systems``/``reference``/``testbed``, ``media``/``rtc``/``probes``, ``analysis``, ``store``,
``scenario``. This module holds only the version and imports nothing.
"""

__version__ = "0.1.0"
