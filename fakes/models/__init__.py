"""The Workers AI model surface: which models exist, what a scripted model generates, how its output is
framed on each surface, and what it costs in neurons."""
