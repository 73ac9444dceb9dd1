"""The image's ``--help``: Locust's options and this tool's (``--personas``, ``--baseline``, ...).

Locust prints its help before it loads the locustfile, so a plain ``locust --help`` leaves out
the options the locustfile adds (``init_command_line_parser``): this imports it, then prints
the whole parser's help, whatever the setup. The import sees ``--help`` among the arguments,
so its start-up checks (a taken port, ``--baseline``) skip it and remove no report; a personas
file that cannot be read still ends the import, after the options are added: it is named on
stderr, and the help printed all the same (exit 0).

    python3 /app/docker/help.py --help
"""

import sys
from pathlib import Path

# the locustfile's folder (/app), as a script's own folder is what Python puts on the path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from locust.argument_parser import get_parser

try:
    import locustfile  # noqa: F401  (adds this tool's options)
except SystemExit:
    pass  # the personas file, named above; its imports have added the options

get_parser().print_help()
