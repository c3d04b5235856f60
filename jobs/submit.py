"""spark-submit entry point: `spark-submit jobs/submit.py STAGE --domain D --batch YYYY-MM-DD --run-id R`."""

import sys

from jichu.cli import main

if __name__ == "__main__":
    sys.exit(main(["job", *sys.argv[1:]]))
