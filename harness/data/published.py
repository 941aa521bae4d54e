"""The published datasets, file by file: each file's name, the SHA-256 of its
published archive (and of the copies known to hold the same bytes), the SHA-256
and size of its IDX content, where the dataset is looked for and downloaded from,
and how the book splits it. ``harness.data.catalogue`` finds, verifies and loads
them; why these hashes are accepted is said there."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.data.dataset import FileSpec


@dataclass(frozen=True)
class _Published:
    """Where a published dataset lives, how to verify it, and how the book splits it."""

    name: str
    title: str
    train_images: FileSpec
    train_labels: FileSpec
    test_images: FileSpec
    test_labels: FileSpec
    n_train: int  # first images of the training file used for training; the rest is validation
    env_subdir: str  # folder under $NNDL_BENCH_DATA ("" = the variable's folder itself)
    mirrors_env: str
    default_mirrors: tuple[str, ...]
    system_dirs: tuple[Path, ...] = ()

    @property
    def files(self) -> tuple[FileSpec, ...]:
        """The four files in the order train images, train labels, test images, test labels."""
        return (self.train_images, self.train_labels, self.test_images, self.test_labels)


_MNIST_T10K_IMAGES = FileSpec(
    "t10k-images-idx3-ubyte",
    ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",),
    "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    7_840_016,
)
_MNIST_T10K_LABELS = FileSpec(
    "t10k-labels-idx1-ubyte",
    ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",),
    "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    10_008,
)

_PUBLISHED: dict[str, _Published] = {
    "mnist": _Published(
        name="mnist",
        title="MNIST",
        train_images=FileSpec(
            "train-images-idx3-ubyte",
            ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",),
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            47_040_016,
        ),
        train_labels=FileSpec(
            "train-labels-idx1-ubyte",
            ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",),
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            60_008,
        ),
        test_images=_MNIST_T10K_IMAGES,
        test_labels=_MNIST_T10K_LABELS,
        n_train=50_000,
        env_subdir="",
        mirrors_env="NNDL_BENCH_MNIST_MIRRORS",
        default_mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
    ),
    "fashion-mnist": _Published(
        name="fashion-mnist",
        title="Fashion-MNIST",
        # Each archive tuple: the authors' published file, then Debian's re-compressed copy.
        train_images=FileSpec(
            "train-images-idx3-ubyte",
            (
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
            ),
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            47_040_016,
        ),
        train_labels=FileSpec(
            "train-labels-idx1-ubyte",
            (
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
            ),
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            60_008,
        ),
        test_images=FileSpec(
            "t10k-images-idx3-ubyte",
            (
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
            ),
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            7_840_016,
        ),
        test_labels=FileSpec(
            "t10k-labels-idx1-ubyte",
            (
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
            ),
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            10_008,
        ),
        n_train=50_000,
        env_subdir="fashion-mnist",
        mirrors_env="NNDL_BENCH_FASHION_MNIST_MIRRORS",
        default_mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
    ),
}
