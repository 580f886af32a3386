"""fastreid-mmt: Mutual Mean-Teaching for fast-reid (placeholder, filled in by the core work)."""
