"""One module per embedder family; each registers its names in :data:`sonic.tails.base.EMBEDDERS`."""
