"""dibao: the 低保 cross-matching engine (应保尽保, 应退尽退) for county civil-affairs offices."""

import os as _os

__version__ = "0.1.0"

# Polars allocates with jemalloc, which by default keeps freed memory for ~10 s before giving it back: at province
# scale the text of a whole drop, read and thrown away, stayed resident through linking and the rules (≈ 3.5 GiB
# at 2 million households). Returning it at once costs a little CPU. Read by jemalloc when Polars first allocates,
# so it only takes effect when dibao is imported before Polars (the CLI, the service, the work-list workers);
# a setting already in the environment wins.
_os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")
