"""Live runs against a real Cloudflare account: credentials, preflight, cost guard, the spike and its report.

Nothing here runs unless asked for with credentials; every test drives it on loopback against the fake.
"""
