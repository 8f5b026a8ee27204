"""Progress bars for long work: network calls done out of the total, with a rate and an ETA.

One rule everywhere: ``progress=None`` shows a bar only when stderr is a terminal (so logs, pipes and
CI stay clean), ``True`` always, ``False`` never. The bars are tqdm's, written to stderr.
"""

from __future__ import annotations

import sys

from tqdm import tqdm

Progress = bool | None | tqdm

#: Work above this many network calls is announced before it starts, with a hint to make it faster.
LONG_CALLS = 1000


def progress_bar(total: int, desc: str, progress: bool | None = None, *, unit: str = "call") -> tqdm:
    """A tqdm bar on stderr over ``total`` items (done/total, rate, ETA); ``progress`` as the module docstring says."""
    disable = None if progress is None else not progress  # tqdm: None disables when the file is not a TTY
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=disable, dynamic_ncols=True)
