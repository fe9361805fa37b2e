"""dibao: the 低保 cross-matching engine (应保尽保, 应退尽退) for county civil-affairs offices."""

__version__ = "0.1.0"
