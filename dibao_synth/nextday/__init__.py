"""The drop of the following morning: a copy of a generated drop with one day's realistic changes.

The daily batch is demonstrated on two consecutive days. Overnight the exports change the way real ones do: the
one member of a one-person roll household dies (the benefit stops), a wage rise lifts a roll household just above
its standard (渐退), a household is newly monitored after a sudden hardship, and (when one qualifies) a vehicle is
sold (``edits.py``).

Everything else stays as it was: unchanged files are copied byte for byte, and a changed file is rewritten in
its own format, encoding and header spelling with every other row exactly as written (values are read without
trimming, so the noise of day 1 — stray spaces, full-width digits — survives; ``files.py``).

Households are chosen from the drop alone (a truth folder, when given, is only updated; ``truth.py``), and
conservatively (``choose.py``): the engine's reading of day 1 is certain, and each change has exactly the effect
named in the summary. Each change draws from its own random stream (seed, step, day 2), so chained days with one
seed still differ.

    python -m dibao_synth.nextday DROP OUT [--seed S] [--truth TRUTH] [--date YYYY-MM-DD]

    from dibao_synth.nextday import next_day
    summary = next_day(Path("day1"), Path("day2"), seed=1, truth=Path("day1_truth"))

Modules, by job: ``files`` (read as written, write back in kind), ``choose`` (what day 1 says, which households
qualify), ``household`` (the newly monitored family), ``edits`` (the four changes), ``truth`` (the day-2 truth),
``summary`` (what was done), ``drop`` (``next_day`` itself), ``cli`` (the command line and its printout).
"""

from dibao_synth.nextday.cli import describe, main
from dibao_synth.nextday.drop import next_day
from dibao_synth.nextday.summary import Change, NextDaySummary

__all__ = ["Change", "NextDaySummary", "describe", "main", "next_day"]
