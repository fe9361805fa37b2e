"""Publishing a run: the contract of a published run, the store, state carried across days, guards against a
broken drop, coverage statistics, work lists, and the household view read back from published runs."""
