"""Load runs on Locust: ``/chat`` users, per-answer measurements, and billed-versus-charged afterwards.

- ``profile``: the load profile file (tenant, session and prompt mixes, the embedded upstream, goals).
- ``stream``: one answer measured as it arrives (time to first token, gaps, terminal event, contract).
- ``locustfile``: the Locust user (``ChatUser``); runs in Locust's own (gevent) processes.
- ``run``: starts the target, runs Locust as child processes, samples billing against the ledger.
- ``analysis``: Locust's statistics and the target's facts into results (checks, findings, load section).
"""
