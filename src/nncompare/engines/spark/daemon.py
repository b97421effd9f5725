"""pyspark's Python worker daemon, with the training stack imported once, before it forks workers.

Spark starts one daemon per executor (``python -m <spark.python.daemon.module>``) and forks
every Python worker from it. Importing scikit-learn here means each barrier task, and each
task that replaces a failed one, starts with it already loaded, instead of spending
seconds importing it while the whole gang waits.
"""

from pyspark.daemon import manager

import nncompare.engines.spark.worker  # noqa: F401  (numpy, the wire protocol)
import nncompare.trainer  # noqa: F401  (scikit-learn's MLP, threadpoolctl)

if __name__ == "__main__":
    manager()
