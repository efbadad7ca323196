import sys

from facedouble.cli import main

if __name__ == "__main__":  # a spawned child process re-imports this module; it must not re-run the CLI
    sys.exit(main())
