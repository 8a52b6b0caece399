"""Results and their rendering: ``results`` (the versioned ``results.json`` schema), ``render`` (Jinja
templates to report.md, a self-contained report.html and docs/ai-gateway.md) and ``charts`` (inline SVG).

This package knows results, not how they were obtained: it never imports the runner or a target.
"""
