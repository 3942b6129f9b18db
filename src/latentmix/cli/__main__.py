"""``python -m latentmix.cli``: the same as the ``latentmix`` console script."""

from latentmix.cli import main

raise SystemExit(main())
