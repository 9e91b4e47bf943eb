"""One module per recommender (random and pop in ``baselines``, ``knn``, ``ease``, ``elsa``, ``snn``, ``bert4rec``),
plus what they share: saving and loading (``state``), user histories (``history``) and torch training
helpers (``training``). Each registers in :data:`sonic.rouge.base.RECOMMENDERS`."""
