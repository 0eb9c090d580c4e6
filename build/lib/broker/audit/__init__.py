"""Audit: run manifests, input snapshots, replay, the tamper-evident chain, export and import.

What a run leaves behind (written by ``broker.match.service``): the run row (business date, parameters,
scope, software versions and the digests of its manifest, inputs, decisions and rule-firing order), the
exact text of each rule file, a content-addressed snapshot of every input record it read, and every
decision with its hash. Each completed run is a link in the chain (``chain.py``, ``digests.py``).

Modules, one per ``broker audit`` command:

* ``stored``: a run read back, every piece checked against its hash (shared by the others);
* ``replay``: re-execute a run from its snapshot and stored rules, compare decision by decision;
* ``verify``: recompute the chain and everything each link vouches for;
* ``explain``: the rules behind one pair's decision, or why the run never decided it;
* ``export`` / ``importer``: a run as JSONL or CSV, and back into any database;
* ``prune``: retention, the only deletion, itself a link in the chain.
"""
