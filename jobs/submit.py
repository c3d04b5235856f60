"""spark-submit entry point: `spark-submit jobs/submit.py COMMAND ARGS...` runs `jichu COMMAND ARGS...` in the
driver, e.g. `job STAGE... --domain D --batch YYYY-MM-DD --run-id R` or `reconcile --batch YYYY-MM-DD`."""

import sys

from jichu.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
