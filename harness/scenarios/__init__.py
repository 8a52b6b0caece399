"""Scenario files to results: the model, the loader, targets, the runner, checks and measurements.

- ``model``: the scenario format (strict pydantic; its JSON Schema is ``scenarios/schema.json``);
- ``loader``: finding and loading files, tenant resolution; errors name file, line and field;
- ``targets``: the ``Target`` interface, capabilities, the records sources hand back, the registry;
- ``fake_target``, ``url_target``: the embedded fake with the reference gateway, and any ``/chat`` URL;
- ``control``: reading the fake over HTTP (control API, Logs API);
- ``state``, ``sessions``: reading what the SUT stored (ledger keys and figures; chat sessions, from its
  storage or its history route in any documented shape and order);
- ``exchange``: one request recorded event by event; ``checks``: expectations and cross-source checks;
  ``measure``: percentiles; ``runner``: ``run_scenario`` and ``run_scenarios``.

Results are ``aigw_harness.report.results`` models; rendering them is ``aigw_harness.report``'s job.
"""
