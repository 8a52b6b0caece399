"""Shared HTTP plumbing of the fake: parsed requests and replies, the router and writer, Cloudflare's error
catalogue and id formats."""
