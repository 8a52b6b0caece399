"""The CI regression gate: baselines of verdicts (``baseline``), contract snapshots of a stream's shape
(``snapshot``) and JUnit XML from a run (``junit``). Each reads results; none runs scenarios itself."""
