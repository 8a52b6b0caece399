"""aigw-harness: test Cloudflare AI Gateway and Workers AI code without spending a cent.

Packages:
- ``harness.sse``: the one incremental Server-Sent Events decoder and encoder.
- ``harness.gateway``: the reference gateway (the platform's ``/chat`` contract).
- ``harness.scenarios``: scenario files, targets and the runner.
- ``harness.report``: findings rendered with Jinja.
"""

__version__ = "0.1.0"
