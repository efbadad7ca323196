import sys

from facedouble.cli import main

sys.exit(main())
