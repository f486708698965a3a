import numpy as np
import pytest

pytest.importorskip("tensorflow")

from stages.dataset import cache_bytes, make_dataset  # noqa: E402
from stages.model import make_augmentation  # noqa: E402
from stages.params import AugmentParams, TrainParams  # noqa: E402
from stages.precision import cpu_flags, dtype_policy  # noqa: E402
from stages.train import class_weights, make_callbacks, make_optimizer  # noqa: E402
from tests.helpers import image_tree  # noqa: E402


def test_balanced_class_weights_equalise_the_classes():
    labels = [0] * 90 + [1] * 10
    weights = class_weights(labels, 2, "balanced")
    assert weights[0] * 90 == pytest.approx(weights[1] * 10)
    assert class_weights(labels, 2, "none") is None


@pytest.mark.parametrize("name, expected", [("adam", "Adam"), ("sgd", "SGD"), ("rmsprop", "RMSprop")])
def test_optimizer_and_schedule_from_params(name, expected):
    optimizer = make_optimizer(TrainParams(optimizer=name, lr_schedule="cosine", epochs=2), steps_per_epoch=5)
    assert type(optimizer).__name__ == expected
    assert type(optimizer.learning_rate).__name__ != "float"  # a schedule, not a constant


def test_early_stopping_only_when_asked():
    assert len(make_callbacks(TrainParams())) == 1
    callbacks = make_callbacks(TrainParams(early_stopping={"patience": 2, "monitor": "val_accuracy"}))
    assert callbacks[-1].patience == 2 and callbacks[-1].restore_best_weights


AVX512_BF16_CPU = {"avx2", "avx512f", "avx512_bf16"}
OLDER_CPU = {"avx2", "avx512f"}


@pytest.mark.parametrize("setting, gpus, flags, expected", [
    ("auto", [], AVX512_BF16_CPU, "mixed_bfloat16"),  # native bfloat16: about 2x float32 here
    ("auto", [], {"amx_bf16"}, "mixed_bfloat16"),
    ("auto", [], OLDER_CPU, "float32"),  # emulated bfloat16 would be slower
    ("auto", [(8, 0)], AVX512_BF16_CPU, "mixed_float16"),  # a GPU decides, whatever the CPU
    ("auto", [(6, 1)], AVX512_BF16_CPU, "float32"),  # no tensor cores
    ("auto", [(8, 0), (6, 1)], set(), "float32"),  # every GPU must have them
    ("none", [(8, 0)], AVX512_BF16_CPU, "float32"),
    ("float16", [], set(), "mixed_float16"),  # explicit settings are obeyed
    ("bfloat16", [], OLDER_CPU, "mixed_bfloat16"),
])
def test_dtype_policy_follows_the_hardware_only_on_auto(setting, gpus, flags, expected):
    assert dtype_policy(setting, gpus, flags) == expected


def test_auto_skips_bfloat16_without_onednn():  # TF_ENABLE_ONEDNN_OPTS=0: no native bfloat16 kernels
    assert dtype_policy("auto", [], AVX512_BF16_CPU, onednn=False) == "float32"


def test_old_mixed_precision_switch_still_reads():
    assert TrainParams(mixed_precision=True).mixed_precision == "float16"
    assert TrainParams(mixed_precision=False).mixed_precision == "none"


def test_cpu_flags_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    core = "processor\t: {}\nflags\t\t: fpu avx2 avx512_bf16\n"
    cpuinfo.write_text(core.format(0) + "\n" + core.format(1))
    assert cpu_flags(cpuinfo) == {"fpu", "avx2", "avx512_bf16"}
    assert cpu_flags(tmp_path / "missing") == set()


def test_every_augmentation_knob_adds_its_layer():
    knobs = AugmentParams(translation=0.1, contrast=0.2, brightness=0.1)
    names = [type(layer).__name__ for layer in make_augmentation(knobs, 0)]
    assert names == ["RandomAffine", "RandomContrast", "RandomBrightness"]
    [affine] = [layer for layer in make_augmentation(knobs, 0) if type(layer).__name__ == "RandomAffine"]
    assert (affine.horizontal_flip, affine.rotation, affine.zoom, affine.translation) == (True, 0.1, 0.1, 0.1)


@pytest.mark.parametrize("on_disk", [False, True])
def test_dataset_batches_and_caches(tmp_path, on_disk):
    image_tree(tmp_path / "img", {"a": 5, "b": 4}, size=20)
    files = sorted((tmp_path / "img").glob("*/*.jpg"))
    labels = [0 if f.parent.name == "a" else 1 for f in files]
    cache = tmp_path / "cache" / "train" if on_disk else None
    if cache:
        cache.parent.mkdir()
    ds = make_dataset(files, labels, (16, 12), batch_size=4, shuffle_seed=1, cache_file=cache)
    first = [(x.numpy(), y.numpy()) for x, y in ds]
    assert [x.shape for x, _ in first] == [(4, 16, 12, 3), (4, 16, 12, 3), (1, 16, 12, 3)]
    assert sorted(np.concatenate([y for _, y in first]).tolist()) == sorted(labels)
    second = [(x.numpy(), y.numpy()) for x, y in ds]
    assert sorted(np.concatenate([y for _, y in second]).tolist()) == sorted(labels)  # replayed from the cache
    assert bool(cache) == bool(cache and list(cache.parent.iterdir()))
    assert cache_bytes(10, (150, 150)) == 675_000
