"""The `tf.distribute` strategy the hardware offers (or the one the config names)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from kerastrain import _keras
from kerastrain.config.schema import RuntimeSpec
from kerastrain.errors import KeyProblem


@dataclass(frozen=True)
class StrategyChoice:
    strategy: Any
    name: str
    devices: list[str]

    @property
    def distributes(self) -> bool:
        """Whether Keras copies the input pipelines to several replicas."""
        return self.name not in ("default (no distribution)", "OneDeviceStrategy")


def _tpu_resolver(tf: Any) -> Any | None:
    if not (os.environ.get("TPU_NAME") or os.environ.get("COLAB_TPU_ADDR")
            or os.path.exists("/dev/accel0")):
        return None
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return resolver
    except (ValueError, RuntimeError):
        return None


def choose_strategy(spec: RuntimeSpec) -> StrategyChoice:
    """auto: a TPU if one is attached, MirroredStrategy over several GPUs, one GPU, else the
    CPU. A named strategy that the machine cannot run is a config error."""
    tf = _keras.tf()
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    wanted = spec.strategy
    path = ("runtime", "strategy")
    if wanted == "multi_worker_mirrored":
        if "TF_CONFIG" not in os.environ:
            raise KeyProblem(path, "multi_worker_mirrored needs TF_CONFIG describing the "
                                   "cluster (each worker's address and its index).")
        if not os.environ.get("TF_USE_LEGACY_KERAS") == "1":
            raise KeyProblem(path, "Keras 3 cannot train under MultiWorkerMirroredStrategy "
                                   "(it fails with 'Attempt to convert a value (PerReplica...)'); "
                                   "this build of kerastrain supports one host only. Use "
                                   "'mirrored' for several GPUs of one machine.")
    if wanted in ("auto", "tpu"):
        resolver = _tpu_resolver(tf)
        if resolver is not None:
            strategy = tf.distribute.TPUStrategy(resolver)
            return StrategyChoice(strategy, "TPUStrategy",
                                  [d.name for d in tf.config.list_logical_devices("TPU")])
        if wanted == "tpu":
            raise KeyProblem(path, "no TPU was found (TPU_NAME is not set and no TPU device "
                                   "is attached). Use 'auto'.")
    devices = list(spec.devices or gpus)
    if wanted == "mirrored" or (wanted == "auto" and len(devices) > 1):
        strategy = tf.distribute.MirroredStrategy(devices=devices or None)
        return StrategyChoice(strategy, "MirroredStrategy", list(strategy.extended.worker_devices))
    if wanted == "one_device" or (wanted == "auto" and len(devices) == 1):
        device = devices[0] if devices else "/cpu:0"
        return StrategyChoice(tf.distribute.OneDeviceStrategy(device), "OneDeviceStrategy",
                              [device])
    return StrategyChoice(tf.distribute.get_strategy(), "default (no distribution)",
                          [d.name for d in tf.config.list_logical_devices()])
