"""The gateway pipeline and its stages, and the model request entry points (Workers AI on the gateway and
API hosts, the Universal endpoint) that feed it."""
