"""The ORIGINAL musicnn 0.1.0 package's speed on audio files (run by ``benchmarks/musicnn.py`` in its own venv).

Needs a venv with ``tensorflow-cpu==2.21.0``, ``tf-keras==2.21.0``, ``librosa`` and the musicnn wheel
installed with ``--no-deps`` (see ``tests/fixtures/make_musicnn_fixture.py``); ``TF_USE_LEGACY_KERAS=1``
is set here. Nothing of the package is patched. Two ways of using it, each over every file:

- ``package``: ``musicnn.extractor.extractor(file, model, input_length=3, extract_features=True)`` per
  file, as its README shows (it builds the graph and restores the checkpoint on every call, and runs
  one 3-second patch per session run);
- ``graph``: the package's graph built and restored once (not timed), then per file the package's own
  ``batch_data`` front-end and one session run over all of the file's patches: TF at its best.

Prints one JSON object: ``{"package": [wall s, cpu s], "graph": [wall s, cpu s], "clips": n,
"tensorflow": version}`` (cpu: this process's CPU time over every thread).

    TF_USE_LEGACY_KERAS=1 /tmp/tfvenv/bin/python tf_clips_per_second.py --model MSD_musicnn FILE...
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="MSD_musicnn")
    parser.add_argument("--modes", default="package,graph")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()

    import warnings

    warnings.filterwarnings("ignore")
    import musicnn
    import tensorflow as tf
    from musicnn import extractor, models

    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
    result = {"clips": len(args.files), "tensorflow": tf.__version__}
    modes = args.modes.split(",")
    if "package" in modes:
        with contextlib.redirect_stdout(io.StringIO()):
            extractor.extractor(args.files[0], model=args.model, input_length=3, extract_features=True)  # warm-up
            started, cpu = time.perf_counter(), time.process_time()
            for path in args.files:
                extractor.extractor(path, model=args.model, input_length=3, extract_features=True)
            result["package"] = [time.perf_counter() - started, time.process_time() - cpu]
    if "graph" in modes:
        tf.compat.v1.reset_default_graph()
        x = tf.compat.v1.placeholder(tf.float32, [None, 187, 96])
        is_training = tf.compat.v1.placeholder(tf.bool)
        outputs = models.define_model(x, is_training, args.model, 50)
        fetches = [tf.nn.sigmoid(outputs[0]), outputs[-1]]
        with tf.compat.v1.Session() as session:
            tf.compat.v1.train.Saver().restore(session, os.path.dirname(musicnn.__file__) + "/" + args.model + "/")
            batch, _ = extractor.batch_data(args.files[0], 187, 187)
            session.run(fetches, feed_dict={x: batch, is_training: False})  # warm-up
            started, cpu = time.perf_counter(), time.process_time()
            for path in args.files:
                batch, _ = extractor.batch_data(path, 187, 187)
                session.run(fetches, feed_dict={x: batch, is_training: False})
            result["graph"] = [time.perf_counter() - started, time.process_time() - cpu]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
