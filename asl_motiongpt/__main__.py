import sys

from asl_motiongpt.cli import main

sys.exit(main())
