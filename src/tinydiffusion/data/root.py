"""Where downloadable datasets live on disk.

The data root holds one folder per dataset with the files under their published names, the same
layout as the project's ``shared/data``::

    ROOT/fashion-mnist/train-images-idx3-ubyte.gz
    ROOT/mnist/t10k-labels-idx1-ubyte.gz
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "TINYDIFFUSION_DATA"


def data_root_origin() -> str:
    """Where :func:`data_root` comes from, as a message puts it."""
    if os.environ.get(ENV_VAR):
        return f"set by ${ENV_VAR}"
    return f"the default; set ${ENV_VAR} to use another folder"


def data_root() -> Path:
    """``$TINYDIFFUSION_DATA`` if set, else ``$XDG_CACHE_HOME/tinydiffusion``, else ``~/.cache/tinydiffusion``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(cache).expanduser() if cache else Path.home() / ".cache"
    return base / "tinydiffusion"
