"""Entry point placeholder; the subcommands are added by the CLI modules."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    raise SystemExit("tinydiffusion: the command line is not assembled yet")
