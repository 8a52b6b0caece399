"""pytest plugin for aigw-harness (registered through the ``pytest11`` entry point).

Opt-in and lazy: it changes nothing in a run that does not use its options, markers or fixtures.
"""
