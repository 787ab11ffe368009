"""The registry of data sets: one :mod:`spec <.specs>` per set, looked up by name or alias.

To add a data set, add one spec to ``_SPECS`` below (or call :func:`register`): its names,
classes, shape, normalisation, folders, checksums and loader all live in that one object.
"""

from __future__ import annotations

from ..errors import InputError
from .specs import (
    CifarSpec,
    DatasetInfo,
    DatasetSpec,
    FolderSpec,
    IdxSpec,
    NoiseSpec,
    OdinSpec,
    SvhnSpec,
    TinyImageNetResizeSpec,
)

__all__ = [
    "REGISTRY",
    "register",
    "get_spec",
    "canonical_name",
    "dataset_info",
    "normalization",
    "in_datasets",
    "ood_datasets",
]

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
DIGITS = tuple(str(i) for i in range(10))
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR100_CLASSES = (  # the fine label names of cifar-100-python/meta, in label order
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
)

# Normalisation: mean / std per channel in [0, 1] pixel units. CIFAR/SVHN: the values of the IsoMax
# reference code (dlmacedo/entropic-out-of-distribution-detection); (Fashion-)MNIST: the
# training-set statistics.
# Checksums: published md5s (torchvision's resources, the ODIN / SVHN / CIFAR pages) plus Debian's
# re-gzipped Fashion-MNIST (package dataset-fashion-mnist, its md5sums file). For idx files the
# name without ".gz" holds the md5 of the *uncompressed* content (accepts any re-gzipped or
# gunzipped copy). Tree sha256: of all image files of a folder copy, concatenated in C-locale sorted
# path order; checked when the decoded-image cache is built; a mismatch only warns.
_SPECS: tuple[DatasetSpec, ...] = (
    IdxSpec(
        name="fashion-mnist",
        aliases=("fmnist",),
        classes=FASHION_MNIST_CLASSES,
        shape=(1, 28, 28),
        mean=(0.2860,),
        std=(0.3530,),
        in_distribution=True,
        subdirs=("fashion-mnist", "fashion_mnist", "FashionMNIST/raw", "FashionMNIST"),
        torchvision_class="FashionMNIST",
        how="`apt-get install dataset-fashion-mnist` (Debian/Ubuntu; files land in "
        "/usr/share/datasets/fashion-mnist), or load_dataset('fashion-mnist', download=True) "
        "(torchvision, needs internet), or the four idx .gz files from "
        "https://github.com/zalandoresearch/fashion-mnist",
        md5={
            "train-images-idx3-ubyte.gz": ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "cf8536b0aa1a6ac5fa3f23001093305c"),
            "train-labels-idx1-ubyte.gz": ("25c81989df183df01b3e8a0aad5dffbe", "10bea18fdb374794d4bb42e356e600c9"),
            "t10k-images-idx3-ubyte.gz": ("bef4ecab320f06d8554ea6380940ec79", "f78720b4224f21cce2f2ccf2d7a94c9a"),
            "t10k-labels-idx1-ubyte.gz": ("bb300cfdad3c16e7a12a480ee83cd310", "0d30e22e447f3c33dab9ed536400ac01"),
            "train-images-idx3-ubyte": ("f4a8712d7a061bf5bd6d2ca38dc4d50a",),
            "train-labels-idx1-ubyte": ("9018921c3c673c538a1fc5bad174d6f9",),
            "t10k-images-idx3-ubyte": ("8181f5470baa50b63fa0f6fddb340f0a",),
            "t10k-labels-idx1-ubyte": ("15d484375f8d13e6eb1aabb0c3f46965",),
        },
    ),
    CifarSpec(
        name="cifar10",
        classes=CIFAR10_CLASSES,
        shape=(3, 32, 32),
        mean=(0.491, 0.482, 0.446),
        std=(0.247, 0.243, 0.261),
        in_distribution=True,
        folder="cifar-10-batches-py",
        archive="cifar-10-python.tar.gz",
        members={"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)},
        meta="batches.meta",
        meta_key="label_names",
        label_key="labels",
        subdirs=("cifar10", "cifar-10", "CIFAR10", "cifar"),
        image_folders=("cifar10-jpg", "cifar10-png", "cifar10-images", "cifar10"),
        image_folder_sha256=("dd89200ef3ace8900ff1354198dbb556809d3f6279e6ec7f75f21a417e15c9e2",),
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        torchvision_class="CIFAR10",
        md5={
            "cifar-10-python.tar.gz": ("c58f30108f718f92721af3b95e74349a",),
            "data_batch_1": ("c99cafc152244af753f735de768cd75f",),
            "data_batch_2": ("d4bba439e000b95fd0a9bffe97cbabec",),
            "data_batch_3": ("54ebc095f3ab1f0389bbae665268c751",),
            "data_batch_4": ("634d18415352ddfa80567beed471001a",),
            "data_batch_5": ("482c414d41f54cd18b22e5b47cb7c3cb",),
            "test_batch": ("40351d587109b95175f43aff81a1287e",),
            "batches.meta": ("5ff9c542aee3614f3951f8cda6e48888",),
        },
    ),
    CifarSpec(
        name="cifar100",
        classes=CIFAR100_CLASSES,
        shape=(3, 32, 32),
        mean=(0.507, 0.486, 0.440),
        std=(0.267, 0.256, 0.276),
        in_distribution=True,
        folder="cifar-100-python",
        archive="cifar-100-python.tar.gz",
        members={"train": ("train",), "test": ("test",)},
        meta="meta",
        meta_key="fine_label_names",
        label_key="fine_labels",
        subdirs=("cifar100", "cifar-100", "CIFAR100", "cifar"),
        image_folders=("cifar100-jpg", "cifar100-png", "cifar100-images", "cifar100"),
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        torchvision_class="CIFAR100",
        md5={
            "cifar-100-python.tar.gz": ("eb9058c3a382ffc7106e4002c42a8d85",),
            "train": ("16019d7e3df5f24257cddd939b257f8d",),
            "test": ("f0ef6b0ae62326f3e7ffdfab6717acfc",),
            "meta": ("7973b15100ade9c7d40fb424638fde48",),
        },
    ),
    SvhnSpec(
        name="svhn",
        classes=DIGITS,
        shape=(3, 32, 32),
        mean=(0.437, 0.443, 0.472),
        std=(0.198, 0.201, 0.197),
        in_distribution=True,
        subdirs=("svhn", "SVHN"),
        md5={
            "train_32x32.mat": ("e26dedcc434d2e4c54c9b2d4a06d8373",),
            "test_32x32.mat": ("eb5a983be6a315427106f1b164d9cef3",),
        },
    ),
    IdxSpec(
        name="mnist",
        classes=DIGITS,
        shape=(1, 28, 28),
        mean=(0.1307,),
        std=(0.3081,),
        subdirs=("mnist", "mnist-test", "MNIST/raw", "MNIST"),
        torchvision_class="MNIST",
        how="load_dataset('mnist', download=True) / load_ood('mnist', download=True) (torchvision, "
        "needs internet), or the idx .gz files from https://yann.lecun.com/exdb/mnist/",
        md5={
            "train-images-idx3-ubyte.gz": ("f68b3c2dcbeaaa9fbdd348bbdeb94873",),
            "train-labels-idx1-ubyte.gz": ("d53e105ee54ea40749a09fcbcd1e9432",),
            "t10k-images-idx3-ubyte.gz": ("9fb629c4189551a2d022fa330f9573f3",),
            "t10k-labels-idx1-ubyte.gz": ("ec29112dd5afa0611ce80d1b7f02629c",),
            "t10k-images-idx3-ubyte": ("2646ac647ad5339dbf082846283269ea",),
            "t10k-labels-idx1-ubyte": ("27ae3e4e09519cfbb04c329615203637",),
        },
    ),
    OdinSpec(
        name="isun",
        shape=(3, 32, 32),
        archives=("iSUN.tar.gz",),
        folders=("iSUN",),
        subdirs=("isun", "iSUN", "odin"),
        md5={"iSUN.tar.gz": ("be77b0f2c26fda898afac5f99645ee70",)},
    ),
    TinyImageNetResizeSpec(
        name="tinyimagenet-resize",
        aliases=("tinyimagenet", "imagenet-resize"),
        shape=(3, 32, 32),
        archives=("Imagenet_resize.tar.gz",),
        folders=("Imagenet_resize",),
        subdirs=("tinyimagenet-resize", "imagenet-resize", "Imagenet_resize", "tinyimagenet", "odin"),
        pool_dirs=("tiny-imagenet-200", "tinyimagenet/tiny-imagenet-200"),
        pool_sha256=("c9c8052cff82921baa9a8ea2d819a67d90ebe7b5cd3682203e508b48dd26493d",),
        pool_url="http://cs231n.stanford.edu/tiny-imagenet-200.zip",
    ),
    OdinSpec(
        name="lsun-resize",
        shape=(3, 32, 32),
        archives=("LSUN_resize.tar.gz",),
        folders=("LSUN_resize",),
        subdirs=("lsun-resize", "lsun_resize", "LSUN_resize", "odin"),
    ),
    # OpenOOD v1.5's far-OOD sets for CIFAR, kept at 32x32 RGB (OpenOOD: Resize(32) + CenterCrop(32))
    FolderSpec(
        name="textures",
        aliases=("dtd", "texture"),
        shape=(3, 32, 32),
        subdirs=("dtd", "textures", "texture", "dtd-r1.0.1/dtd"),
        folders=("images", ""),
        how="the Describable Textures Dataset, https://www.robots.ox.ac.uk/~vgg/data/dtd/ "
        "(dtd-r1.0.1.tar.gz; its dtd/images/<class>/*.jpg, 5,640 images), extracted in a data "
        "root; or OpenOOD's images_classic/texture/ folder copied to <root>/texture/",
    ),
    FolderSpec(
        name="places365",
        shape=(3, 32, 32),
        subdirs=("places365", "Places365", "places"),
        folders=("val_256", "images", ""),
        how="Places365's validation images, http://places2.csail.mit.edu/download.html "
        "(val_256.tar, 36,500 256x256 JPEGs) extracted into <root>/places365/ (giving "
        "places365/val_256/*.jpg); or OpenOOD's images_classic/places365/ folder as "
        "<root>/places365/",
    ),
    NoiseSpec(name="gaussian"),
    NoiseSpec(name="uniform"),
)

#: canonical name -> spec, in registration order
REGISTRY: dict[str, DatasetSpec] = {}
_KEYS: dict[str, str] = {}  # normalised name or alias -> canonical name


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "").replace("_", "").replace(" ", "")


def register(spec: DatasetSpec) -> DatasetSpec:
    """Add a data set; its name and aliases must not collide with those of another set."""
    keys = {_key(spec.name), *(_key(a) for a in spec.aliases)}
    for k in keys:
        if _KEYS.get(k, spec.name) != spec.name:
            raise InputError(f"dataset name or alias {k!r} of {spec.name!r} is already used by {_KEYS[k]!r}")
    if (spec.mean is None) != (spec.std is None):
        raise InputError(f"{spec.name}: give both mean and std, or neither")
    REGISTRY[spec.name] = spec
    _KEYS.update(dict.fromkeys(keys, spec.name))
    return spec


for _spec in _SPECS:
    register(_spec)


def canonical_name(name: str) -> str:
    """The registered name for ``name`` or an alias (case, '-', '_' and spaces ignored)."""
    key = _key(name)
    if key not in _KEYS:
        raise InputError(f"unknown dataset {name!r}; known names: {', '.join(REGISTRY)}")
    return _KEYS[key]


def get_spec(name: str) -> DatasetSpec:
    """The spec of a data set, by name or alias (ValueError listing the known names)."""
    return REGISTRY[canonical_name(name)]


def dataset_info(name: str) -> DatasetInfo:
    """What to record about a data set: class names, input shape (C, H, W), mean/std, splits.

    >>> info = dataset_info("cifar10")
    >>> info.classes[:2], info.shape, info.mean
    (('airplane', 'automobile'), (3, 32, 32), (0.491, 0.482, 0.446))
    """
    return get_spec(name).info()


def normalization(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) per channel, in [0, 1] pixel units, for an in-distribution data set."""
    try:
        spec = get_spec(name)
    except ValueError:
        spec = None
    if spec is None or spec.mean is None or spec.std is None:
        known = [s.name for s in REGISTRY.values() if s.mean is not None and s.std is not None]
        raise InputError(f"no normalization for {name!r}; known: {', '.join(known)}")
    return spec.mean, spec.std


def in_datasets() -> tuple[str, ...]:
    """The in-distribution (training) sets of the benchmarks."""
    return tuple(s.name for s in REGISTRY.values() if s.in_distribution)


def ood_datasets() -> tuple[str, ...]:
    """Every set :func:`load_ood` accepts by name."""
    return tuple(REGISTRY)
