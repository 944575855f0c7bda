"""``python -m reprogram.cli``: the ``reprogram`` command run as a module.

The same as the console script: the arguments after the module name go to
:func:`reprogram.cli.main` and its return value is the exit status.
"""

import sys

from . import main

sys.exit(main())
