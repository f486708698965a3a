"""One error type for every problem a user can fix, and the wrapper that reports it.

A stage raises `PipelineError("what is wrong; how to fix it")` for bad input of any kind;
`run_main` turns it into one clear message on stderr and exit status 1 instead of a
traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


class PipelineError(Exception):
    """A problem with the inputs (params, data, services) that the user can fix."""


def run_main(stage: str, main: Callable[[], object]) -> None:
    try:
        main()
    except PipelineError as error:
        print(f"{stage}: error: {error}", file=sys.stderr)
        sys.exit(1)
