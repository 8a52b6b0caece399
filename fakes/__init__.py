"""A faithful fake of Cloudflare AI Gateway and Workers AI.

This package stands alone: it is Cloudflare, as far as its clients can tell, and never imports ``harness``.
"""
