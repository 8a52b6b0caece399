"""Cloudflare's REST APIs on the fake: gateways, logs (with their filters) and the Workers AI binding's
wire protocol."""
