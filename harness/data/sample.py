"""The bundled MNIST sample: the published MNIST test set shipped in the
package, for runs without the network."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from harness.data.dataset import SAMPLE_N_TRAIN, DataError, Dataset, FileSpec
from harness.data.download import sha256_file
from harness.data.idx import read_pair, to_unit_floats


def load_sample(files: tuple[FileSpec, FileSpec]) -> Dataset:
    """The MNIST test set shipped in the package, split 8,000 train / 2,000 test for offline use."""
    root = resources.files(__package__ or "harness.data").joinpath("sample_data")
    with (
        resources.as_file(root.joinpath(f"{files[0].stem}.gz")) as images_path,
        resources.as_file(root.joinpath(f"{files[1].stem}.gz")) as labels_path,
    ):
        for path, file in ((images_path, files[0]), (labels_path, files[1])):
            if not path.is_file():
                raise DataError(
                    f"{path}: the bundled MNIST sample is missing; reinstall nndl-bench"
                )
            verify_sample(path, file)
        images, labels = read_pair(images_path, labels_path)
    return Dataset(
        name="mnist-sample",
        train_images=to_unit_floats(images[:SAMPLE_N_TRAIN]),
        train_labels=labels[:SAMPLE_N_TRAIN].copy(),
        test_images=to_unit_floats(images[SAMPLE_N_TRAIN:]),
        test_labels=labels[SAMPLE_N_TRAIN:].copy(),
    )


def verify_sample(path: Path, file: FileSpec) -> None:
    """The bundled files are the published archives byte for byte; else the install is broken."""
    found = sha256_file(path)
    if found not in file.gz_sha256:
        raise DataError(
            f"{path}: SHA-256 {found} does not match the published {file.stem}.gz "
            f"({file.gz_sha256[0]}); the bundled sample is damaged: reinstall nndl-bench"
        )
