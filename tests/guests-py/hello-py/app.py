"""A wasi:cli/command guest in Python: greets, echoes its arguments and an environment variable,
and exits with the status named by its first argument when that is `exit=N`."""

import os
import sys

from wit_world import exports


class Run(exports.Run):
    def run(self) -> None:
        args = sys.argv[1:]
        print(f"Hello from Python {sys.version_info.major}.{sys.version_info.minor}!")
        print(f"args: {args}")
        print(f"GREETING={os.environ.get('GREETING', '(not set)')}")
        if args and args[0].startswith("exit="):
            sys.exit(int(args[0].removeprefix("exit=")))
