"""Data is what it claims: a label outside the dataset's classes fails loading in one line naming its file
(issue 26, item 6). Real IDX files, written as the published ones are, with one bad label each."""

from __future__ import annotations

import numpy as np
import pytest

from nncompare.cli import main
from nncompare.data import IDX_FILES, load_dataset
from nncompare.errors import DataError
from nncompare.idx import write_idx


def idx_folder(tmp_path, bad_role: str | None, bad_label: int) -> object:
    """A Fashion-MNIST-shaped folder (40 train, 20 test images) whose ``bad_role`` file holds one ``bad_label``."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "data"
    folder.mkdir()
    for split, n in (("train", 40), ("test", 20)):
        labels = np.arange(n) % 10
        if bad_role == f"{split}_labels":
            labels[7] = bad_label
        write_idx(folder / (IDX_FILES[f"{split}_images"] + ".gz"), rng.integers(0, 256, (n, 28, 28)))
        write_idx(folder / (IDX_FILES[f"{split}_labels"] + ".gz"), labels)
    return folder


@pytest.mark.parametrize("role, label", [("train_labels", 10), ("test_labels", 255)])
def test_a_label_outside_the_classes_fails_loading_naming_its_file(role, label, tmp_path):
    folder = idx_folder(tmp_path, role, label)
    with pytest.raises(DataError, match=rf"^{folder / IDX_FILES[role]}\.gz: label {label} at position 7 is outside"):
        load_dataset("fashion-mnist", data_dir=folder)


def test_labels_inside_the_classes_load(tmp_path):
    folder = idx_folder(tmp_path, None, 0)
    assert load_dataset("fashion-mnist", data_dir=folder).classes.tolist() == list(range(10))


def test_data_verify_reports_a_label_outside_the_classes_in_one_line(tmp_path, capsys):
    folder = idx_folder(tmp_path, "train_labels", 10)
    with pytest.raises(SystemExit) as exit_:
        main(["data", "verify", "--dataset", "fashion-mnist", "--data-dir", str(folder)])
    lines = capsys.readouterr().err.splitlines()
    assert (exit_.value.code, len(lines), IDX_FILES["train_labels"] in lines[0]) == (2, 1, True), lines


def test_a_run_on_a_label_outside_the_classes_stops_before_training_and_records_nothing(tmp_path, capsys):
    folder = idx_folder(tmp_path, "test_labels", 10)
    out = tmp_path / "out.jsonl"
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--dataset", "fashion-mnist", "--data-dir", str(folder), "--epochs", "1", "--out", str(out)])
    assert (exit_.value.code, out.exists(), capsys.readouterr().err.count("\n")) == (2, False, 1)
