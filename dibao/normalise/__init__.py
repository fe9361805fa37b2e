"""Normalising what people type: code-like cells (text), ID numbers (GB 11643), names, division codes (GB/T 2260)."""
