"""aigw-harness: test Cloudflare AI Gateway and Workers AI code without spending a cent.

Packages:
- ``aigw_harness.sse``: the one incremental Server-Sent Events decoder and encoder.
- ``aigw_harness.gateway``: the reference gateway (the platform's ``/chat`` contract).
- ``aigw_harness.scenarios``: scenario files, targets and the runner.
- ``aigw_harness.report``: findings rendered with Jinja.
"""

__version__ = "0.1.0"
