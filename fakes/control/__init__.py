"""The fake's own control API under ``/__aigw/``: behaviour, feature options, reset, the request store."""
