"""The installed-apps projection: built from ``sites.metadata`` events only, never from the
``sites`` tables, written to ``projections`` and read from ``projections_replica``."""
