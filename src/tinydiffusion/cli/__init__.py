"""The ``tinydiffusion`` command line: a thin layer over the library."""
