"""``tinydiffusion``: build the parser, run one subcommand, turn user mistakes into one line and exit 2.

The command modules import PyTorch, matplotlib and the rest of the library only inside ``run``, so
building the parser (and ``--help``) stays fast; ``tests/test_cli_help.py`` checks it.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from ..errors import Interrupted, UserError
from . import app_cmd, eval_cmd, export_cmd, recipes_cmd, report_cmd, sample_cmd, show_cmd, train_cmd

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

COMMANDS = {
    "train": train_cmd,
    "sample": sample_cmd,
    "eval": eval_cmd,
    "show": show_cmd,
    "report": report_cmd,
    "recipes": recipes_cmd,
    "export": export_cmd,
    "app": app_cmd,
}


class Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line (no usage dump), with a pointer to --help."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> Parser:
    parser = Parser(prog="tinydiffusion", description="Train, sample, evaluate and see small diffusion models.",
                    formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"tinydiffusion {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, module in COMMANDS.items():
        p = sub.add_parser(name, help=module.HELP, description=module.HELP,
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(handler=module.run)
    return parser


def _one_line_warnings(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """Warnings reach the user as ``tinydiffusion: warning: ...`` lines, not source excerpts."""
    print(f"tinydiffusion: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (Ctrl-C at any point: one line and 130)."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("tinydiffusion: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _main(argv: Sequence[str] | None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help()
        return 0
    warnings.showwarning = _one_line_warnings
    try:
        return int(args.handler(args) or 0)
    except UserError as exc:
        print(f"tinydiffusion {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Interrupted as exc:
        print(f"tinydiffusion {args.command}: {exc}", file=sys.stderr)
        return 128 + int(exc.signum)
    except KeyboardInterrupt:
        print(f"tinydiffusion {args.command}: interrupted; nothing it had written is damaged", file=sys.stderr)
        return EXIT_INTERRUPTED
