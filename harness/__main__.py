import sys

from aigw_harness.cli import main

sys.exit(main())
