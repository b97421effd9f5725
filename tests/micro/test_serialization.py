"""Serialising what the engines ship: the 318 KB weight buffer and a 30,000-sample shard.

Each benchmark is a full round trip (serialise, then deserialise into numpy arrays) through
the serialisers the engines really use:

* ``pickle5-inband`` / ``pickle5-oob``: pickle protocol 5, with the array buffers inside the
  stream or handed over out of band (no copy; what Dask and ``multiprocessing`` build on);
* ``cloudpickle``: what both Dask and PySpark use for functions and Python objects;
* ``dask-serialize`` / ``dask-dumps``: ``distributed.protocol``'s own serialisers, the
  object alone and as a message (header plus frames, as sent to a worker);
* ``arrow-ipc``: an Arrow record batch through the IPC stream format, the columnar path of
  Spark's Python workers; ``pandas-arrow``: the same starting from pandas, as
  ``createDataFrame(pandas_df)`` and pandas UDFs do (one column per pixel);
* ``raw-bytes``: ``tobytes``/``frombuffer``, the floor any copying path pays.

``bytes`` is the payload's in-memory size, ``wire_bytes`` what the serialiser produced, and
``zero_copy`` whether the arrays that came back are views of the ones sent (then the round
trip copied nothing, and the copy is paid later, when the frames are written to a socket).
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest


def _pickle_inband(arrays):
    data = pickle.dumps(arrays, protocol=5)
    return pickle.loads(data), len(data)


def _pickle_oob(arrays):
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(arrays, protocol=5, buffer_callback=buffers.append)
    return pickle.loads(data, buffers=buffers), len(data) + sum(b.raw().nbytes for b in buffers)


def _cloudpickle(arrays):
    import cloudpickle

    data = cloudpickle.dumps(arrays)
    return cloudpickle.loads(data), len(data)


def _dask_serialize(arrays):
    from distributed.protocol import deserialize, serialize

    header, frames = serialize(arrays)
    return deserialize(header, frames), sum(memoryview(f).nbytes for f in frames)


def _dask_dumps(arrays):
    from distributed.protocol import dumps, loads, to_serialize

    frames = dumps({"op": "update", "data": to_serialize(arrays)})
    return loads(frames)["data"], sum(memoryview(f).nbytes for f in frames)


def _to_arrow(arrays):
    import pyarrow as pa

    columns = []
    for a in arrays:
        flat = pa.array(a.reshape(-1))
        columns.append(pa.FixedSizeListArray.from_arrays(flat, a.shape[1]) if a.ndim == 2 else flat)
    return pa.RecordBatch.from_arrays(columns, names=[f"c{i}" for i in range(len(arrays))])


def _ipc_round_trip(batch):
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    buf = sink.getvalue()
    return pa.ipc.open_stream(buf).read_next_batch(), buf.size


def _arrow_ipc(arrays):
    batch, size = _ipc_round_trip(_to_arrow(arrays))
    out = []
    for a, col in zip(arrays, batch.columns, strict=True):
        values = col.values if a.ndim == 2 else col
        out.append(values.to_numpy(zero_copy_only=True).reshape(a.shape))
    return out, size


def _pandas_arrow(arrays):
    import pandas as pd
    import pyarrow as pa

    first, rest = arrays[0], arrays[1:]
    width = first.shape[1] if first.ndim == 2 else 1
    df = pd.DataFrame(first.reshape(len(first), width), columns=[f"p{j}" for j in range(width)])
    for i, a in enumerate(rest):  # labels and other 1-D columns
        df[f"c{i}"] = a
    batch, size = _ipc_round_trip(pa.RecordBatch.from_pandas(df, preserve_index=False))
    back = batch.to_pandas()
    out = [back.iloc[:, :width].to_numpy(dtype=first.dtype).reshape(first.shape)]
    out += [back[f"c{i}"].to_numpy(dtype=a.dtype) for i, a in enumerate(rest)]
    return out, size


def _raw_bytes(arrays):
    blobs = [a.tobytes() for a in arrays]
    return [np.frombuffer(b, dtype=a.dtype).reshape(a.shape) for a, b in zip(arrays, blobs, strict=True)], sum(
        map(len, blobs)
    )


SERIALIZERS = {
    "pickle5-inband": _pickle_inband,
    "pickle5-oob": _pickle_oob,
    "cloudpickle": _cloudpickle,
    "dask-serialize": _dask_serialize,
    "dask-dumps": _dask_dumps,
    "arrow-ipc": _arrow_ipc,
    "pandas-arrow": _pandas_arrow,
    "raw-bytes": _raw_bytes,
}


@pytest.fixture(params=["weights", "shard"])
def payload(request, weights, shard):
    """The arrays one message carries: the weight buffer, or a shard's images and labels."""
    return request.param, ((weights,) if request.param == "weights" else (shard.x, shard.y))


@pytest.mark.parametrize("serializer", list(SERIALIZERS))
def test_round_trip(benchmark, payload, serializer, train_set):
    name, arrays = payload
    benchmark.group = f"serialize: {name}"
    nbytes = sum(a.nbytes for a in arrays)
    out, wire = benchmark(SERIALIZERS[serializer], arrays)
    # zero-copy formats hand back views of the sent arrays: their copy happens later, at the socket
    zero_copy = all(np.shares_memory(got, sent) for got, sent in zip(out, arrays, strict=True))
    benchmark.extra_info.update(data=train_set.source, bytes=nbytes, wire_bytes=int(wire), zero_copy=zero_copy)

    assert len(out) == len(arrays)
    for got, sent in zip(out, arrays, strict=True):
        assert got.dtype == sent.dtype and got.shape == sent.shape
        assert np.array_equal(got, sent)
    # every format carries at least the payload (none can "win" by dropping data)
    assert wire >= nbytes
