"""``python -m dibao_synth.nextday DROP OUT [--seed S] [--truth TRUTH] [--date YYYY-MM-DD]``."""

from dibao_synth.nextday.cli import main

raise SystemExit(main())
