"""``python -m tinydiffusion`` (also what ``torchrun -m tinydiffusion`` runs)."""

from .cli.main import main

raise SystemExit(main())
