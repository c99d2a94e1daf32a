"""What only the embedded stack needs: child-process lifecycle, the one-platform lock, and
the journal that carries compacted topics across restarts of the memory-only broker."""
