"""The results folder of one run (the bottom of the house; ``docs/results.md`` is its contract).

May import: :mod:`harness.errors` only.
"""
