"""``nncompare data``: fetch, verify and describe the datasets."""

from __future__ import annotations

import sys

import click

from nncompare.cli.options import DEFAULT_DATASET, data_dir_option
from nncompare.data import DATASETS, IDX_DATASETS, checksum_status, fetch, load_dataset, locate

_IDX_CHOICE = click.Choice(tuple(IDX_DATASETS))


@click.group()
def data():
    """Fetch, verify and describe the datasets."""


@data.command("fetch")
@click.option("--dataset", type=_IDX_CHOICE, default=DEFAULT_DATASET, show_default=True)
@click.option("--split", type=click.Choice(["train", "test", "all"]), default="all", show_default=True)
def fetch_cmd(dataset, split):
    """Download a dataset into the cache, verifying its checksums."""
    splits = ("train", "test") if split == "all" else (split,)
    paths = fetch(dataset, splits=splits, progress=sys.stderr.isatty())
    for role, path in paths.items():
        click.echo(f"{role:13s} {path}")


@data.command("verify")
@click.option("--dataset", type=_IDX_CHOICE, default=DEFAULT_DATASET, show_default=True)
@data_dir_option
def verify_cmd(dataset, data_dir):
    """Check the files found for a dataset: checksums, IDX structure, shapes."""
    paths = locate(dataset, data_dir=data_dir, download=False)
    for role, path in paths.items():
        click.echo(f"{role:13s} {checksum_status(dataset, role, path):28s} {path}")
    ds = load_dataset(dataset, data_dir=data_dir, download=False)
    click.echo(
        f"ok: {len(ds.y_train)} train and {len(ds.y_test)} test samples, {ds.n_features} features, "
        f"{len(ds.classes)} classes"
    )


@data.command("info")
@data_dir_option
def info_cmd(data_dir):
    """Say, for every dataset, where its files would be read from."""
    for name in DATASETS:
        if name == "digits":
            click.echo(f"{name:14s} built into scikit-learn (load_digits)")
            continue
        try:
            paths = locate(name, data_dir=data_dir, download=False)
            click.echo(f"{name:14s} {paths['train_images'].parent}")
        except Exception as exc:  # report, don't stop: the point is to list every dataset
            click.echo(f"{name:14s} not at hand: {exc}")
