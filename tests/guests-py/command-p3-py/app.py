"""A wasi:cli/command@0.3.0 guest in Python (`async def run`): greets, echoes its arguments and
an environment variable, and exits with the status named by its first argument when that is
`exit=N`."""

import os
import sys

from wit_world import exports


class Run(exports.Run):
    async def run(self) -> None:
        args = sys.argv[1:]
        print(f"Hello from Python on WASI 0.3! args: {args}")
        print(f"GREETING={os.environ.get('GREETING', '(not set)')}")
        if args and args[0].startswith("exit="):
            sys.exit(int(args[0].removeprefix("exit=")))
