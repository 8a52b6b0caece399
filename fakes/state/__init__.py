"""What one running fake holds: its state object, the request store and the log view of it, gateways and
their settings, and the gateway features' state (options, rate windows, spend ledger, response cache)."""
