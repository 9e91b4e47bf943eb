"""One module per embedder family; each exposes ``from_name(name, **options)`` (see :mod:`sonic.tails.base`)."""
