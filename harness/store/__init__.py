"""The results folder of one run: manifest, Parquet tables written in parts, summary (the bottom of the house).

This package is the only code that knows the on-disk layout described in ``docs/results.md``: ``manifest``
(run ids, the JSON documents, atomic writes), ``tables`` (the schemas), ``writer`` (:class:`RunWriter`,
appending while a run goes) and ``reader`` (:class:`RunReader`, everything afterwards), so a schema change
and its upgrade live in one place. Nothing is re-exported here: importing the manifest functions does not
import pyarrow.

May import: :mod:`harness.errors` only.
"""
