"""Input pipeline and training throughput, against the seed's ImageDataGenerator, in one process.

    pip install -e '.[bench]' && python benchmarks/train_throughput.py [--images-per-class 1000] [--rounds 3]

On the same generated 150x150 JPEGs it measures images/second for
  (a) baseline: tf_keras ImageDataGenerator.flow_from_directory with the seed's augmentation
      (rescale, rotation, zoom, horizontal flip), one pass;
  (b) our tf.data input pipeline alone: first epoch (read + decode + resize) and cached epochs;
  (c) compute only: the model's train step on one in-memory batch, repeated (no input cost);
  (d) our end-to-end training: `fit` on (b) with augmentation layers in front of the model;
  (e) `fit` fed by (a) (the same CNN without augmentation layers: the generator augments);
plus (d) without augmentation, with XLA (on the model without augmentation: XLA cannot
compile the augmentation's resampling op) and with deterministic ops, the fraction of step time
spent waiting for input, and ratios against (a). (c)-(e) run under the dtype policy training
uses on this machine (`train.mixed_precision: auto`, or --mixed-precision), and again in
float32 when that differs. Machines here are noisy, so every number comes from this one
process, (a) and (c)-(e) are the medians of interleaved rounds, and the ratios are what to
compare. Results -> reports/benchmarks/train_throughput.json."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from stages import synthetic  # noqa: E402
from stages.dataset import make_dataset, without_autotune  # noqa: E402
from stages.model import loss_for, make_augmentation, make_model, with_augmentation  # noqa: E402
from stages.params import AugmentParams, ModelParams  # noqa: E402
from stages.precision import policy_for_this_machine  # noqa: E402

SIZE = (150, 150)
BATCH = 32
OUT = Path("reports/benchmarks/train_throughput.json")


def rate(n_images: int, seconds: float) -> float:
    return n_images / seconds


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def compiled_model(augment: bool, jit_compile: bool = False, policy: str | None = None) -> keras.Model:
    if policy:
        keras.mixed_precision.set_global_policy(policy)
    layers = make_augmentation(AugmentParams(), seed=1) if augment else []
    model = with_augmentation(make_model((*SIZE, 3), 2, ModelParams()), layers)
    model.compile(keras.optimizers.Adam(1e-3), loss_for(2), metrics=["accuracy"], jit_compile=jit_compile)
    return model


def baseline_generator(folder: Path):
    from tf_keras.preprocessing.image import ImageDataGenerator

    # The seed's augmentation: rescale, rotate 36 degrees (= our rotation 0.1 of a turn), zoom, flip.
    generator = ImageDataGenerator(rescale=1.0 / 255, rotation_range=36, zoom_range=0.1, horizontal_flip=True)
    return generator.flow_from_directory(folder, target_size=SIZE, batch_size=BATCH, class_mode="binary", seed=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # 2,000 images, as the default pipeline: every epoch then outlasts the ~5 s for which
    # tf.data's autotuner holds up an iterator's end (stages/dataset.py), which would
    # otherwise stretch the short epochs of (e), whose dataset Keras builds with it on.
    parser.add_argument("--images-per-class", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="timed epochs per variant, interleaved (median)")
    parser.add_argument("--mixed-precision", choices=["auto", "none", "float16", "bfloat16"], default="auto",
                        help="as train.mixed_precision (default: auto, as training)")
    args = parser.parse_args()
    keras.utils.set_random_seed(1)
    policy = policy_for_this_machine(args.mixed_precision)
    keras.mixed_precision.set_global_policy(policy)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        synthetic.write_dataset(folder, args.images_per_class, SIZE[0], seed=1)
        files = sorted(str(p) for p in folder.glob("*/*.jpg"))
        labels = [synthetic.CLASSES.index(Path(f).parent.name) for f in files]
        n = len(files)
        results: dict[str, float] = {}

        # (a) the seed's ImageDataGenerator, one pass over the data (timed in the rounds below).
        iterator = baseline_generator(folder)

        def generator_pass(_: None) -> float:
            return rate(n, timed(lambda: [iterator[i] for i in range(len(iterator))]))

        # (b) our input pipeline alone: epoch 1 decodes and fills the cache, later epochs replay it.
        ds = make_dataset(files, labels, SIZE, BATCH, shuffle_seed=1)
        results["b_pipeline_first_epoch"] = rate(n, timed(lambda: [None for _ in ds]))
        results["b_pipeline_cached_epoch"] = rate(2 * n, timed(lambda: [[None for _ in ds] for _ in range(2)]))

        x, y = next(iter(ds))
        steps = n // BATCH
        in_memory = without_autotune(tf.data.Dataset.from_tensors((x, y)).repeat(steps).prefetch(2))

        def generator_epoch():
            for i in range(len(iterator)):
                yield iterator[i]

        # Each variant: (model, one timed epoch -> images/s).
        def compute_only(model: keras.Model) -> float:  # (c) one in-memory batch repeated: no input cost
            return rate(steps * BATCH, timed(lambda: model.fit(in_memory, epochs=1, verbose=0)))

        def end_to_end(model: keras.Model) -> float:  # (d) our pipeline (cached) + augmentation + model
            return rate(n, timed(lambda: model.fit(ds, epochs=1, verbose=0)))

        def fit_on_generator(model: keras.Model) -> float:  # (e) the seed's generator augments, the model not
            return rate(n, timed(lambda: model.fit(generator_epoch(), steps_per_epoch=len(iterator), epochs=1,
                                                    verbose=0)))

        variants = {
            "a_imagedatagenerator": (None, generator_pass),
            "c_compute_only": (compiled_model(augment=True, policy=policy), compute_only),
            "d_end_to_end": (compiled_model(augment=True, policy=policy), end_to_end),
            "d_without_augmentation": (compiled_model(augment=False, policy=policy), end_to_end),
            "e_fit_on_imagedatagenerator": (compiled_model(augment=False, policy=policy), fit_on_generator),
        }
        if policy != "float32":  # the same three in float32, to show what the policy buys
            variants["c_compute_only_float32"] = (compiled_model(augment=True, policy="float32"), compute_only)
            variants["d_end_to_end_float32"] = (compiled_model(augment=True, policy="float32"), end_to_end)
            variants["e_fit_on_imagedatagenerator_float32"] = (compiled_model(augment=False, policy="float32"),
                                                               fit_on_generator)
        for model, epoch in variants.values():
            epoch(model)  # warm-up: tracing and allocation
        # Rounds interleave the variants, so a slow spell of this shared machine hits all of
        # them alike; the median of the rounds is reported.
        samples: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, (model, epoch) in variants.items():
                samples[name].append(epoch(model))
        results.update({name: statistics.median(values) for name, values in samples.items()})
        results = dict(sorted(results.items()))  # (a), (b), (c), ... in order

        # XLA cannot compile the augmentation's resampling op (Keras then falls back to no XLA,
        # with a warning), so XLA is measured on the model without augmentation.
        xla = compiled_model(augment=False, jit_compile=True, policy=policy)
        end_to_end(xla)
        results["d_without_augmentation_xla"] = end_to_end(xla)

        # Deterministic ops last: the switch cannot be turned off again in this process.
        tf.config.experimental.enable_op_determinism()
        deterministic = compiled_model(augment=True, policy=policy)
        end_to_end(deterministic)
        results["d_deterministic_ops"] = statistics.median(end_to_end(deterministic) for _ in range(args.rounds))

    base = results["a_imagedatagenerator"]
    report = {
        "images": n,
        "image_size": list(SIZE),
        "batch_size": BATCH,
        "cpu_cores": os.cpu_count(),
        "dtype_policy": policy,
        "images_per_second": {k: round(v, 1) for k, v in results.items()},
        "rounds_images_per_second": {k: [round(v, 1) for v in values] for k, values in samples.items()},
        "ratio_to_a": {k: round(v / base, 2) for k, v in results.items()},
        "d_over_c": round(results["d_end_to_end"] / results["c_compute_only"], 3),
        "input_wait_fraction": round(max(0.0, 1 - results["d_end_to_end"] / results["c_compute_only"]), 3),
        "epoch_speedup_d_over_e": round(results["d_end_to_end"] / results["e_fit_on_imagedatagenerator"], 2),
        "rounds": args.rounds,
        "deterministic_cost": round(1 - results["d_deterministic_ops"] / results["d_end_to_end"], 3),
        "xla_speedup": round(results["d_without_augmentation_xla"] / results["d_without_augmentation"], 2),
    }
    if policy != "float32":
        report["policy_speedup_d"] = round(results["d_end_to_end"] / results["d_end_to_end_float32"], 2)
        report["epoch_speedup_d_over_e_float32"] = round(
            results["d_end_to_end_float32"] / results["e_fit_on_imagedatagenerator_float32"], 2)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")

    print(f"\n{n} images {SIZE[0]}x{SIZE[1]}, batch {BATCH}, {os.cpu_count()} CPU cores, (c)-(e) in {policy}\n")
    print(f"| {'measure':34} | {'images/s':>9} | {'x (a)':>6} |")
    print(f"|{'-' * 36}|{'-' * 11}|{'-' * 8}|")
    for key, value in results.items():
        print(f"| {key:34} | {value:9.1f} | {value / base:6.2f} |")
    print(f"\n(d)/(c) = {report['d_over_c']}  input wait ~ {report['input_wait_fraction']:.1%} of step time")
    print(f"epoch of (d) is {report['epoch_speedup_d_over_e']}x faster than (e)")
    if policy != "float32":
        print(f"{policy} makes (d) {report['policy_speedup_d']}x faster than float32; "
              f"in float32 (d) is {report['epoch_speedup_d_over_e_float32']}x (e)")
    print(f"deterministic ops cost {report['deterministic_cost']:.1%}; XLA speedup {report['xla_speedup']}x")
    print(f"-> {OUT}")


if __name__ == "__main__":
    main()
