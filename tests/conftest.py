# pytester drives the pytest plugin's own tests (tests/plugin); pytest allows pytest_plugins only here.
pytest_plugins = ["pytester"]
