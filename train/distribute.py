"""Where a run trains: the distribution strategy, the global batch and learning rates it implies, and the record of
the machine (devices, TensorFlow/CUDA/cuDNN builds, dtype policy, replicas, threads) every run starts with.

Strategy, chosen once per run (``choose_strategy``):
- ``TF_CONFIG`` names a cluster with workers: ``MultiWorkerMirroredStrategy`` (every worker runs the same
  ``nsl train``; the chief writes the run folder, the others write a throw-away copy: ``worker_role``);
- else several GPUs: ``MirroredStrategy``; one GPU: ``OneDeviceStrategy`` on it (Keras then prefetches each batch
  to the GPU while the previous step runs); no GPU: TensorFlow's default strategy (the CPU).

``batch`` is per replica (the recipe's 32 was one device's batch): the global batch is ``batch x replicas``, and
with ``scale_lr`` (default) every learning rate is multiplied by the replicas too (the linear scaling rule of
Goyal et al., 2017: the same per-image step size when the batch grows N times). One replica changes nothing.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass

import tensorflow as tf
import tf_keras as keras

from nsl.errors import ConfigError
from nsl.options import HParams

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerRole:
    """This process in a multi-worker cluster (``TF_CONFIG``): its task, and whether it writes the run folder."""

    task_type: str = "worker"
    task_id: int = 0
    workers: int = 1
    named_chief: bool = False     # the cluster has a "chief" task (else worker 0 is the chief, as in TensorFlow)

    @property
    def is_chief(self) -> bool:
        if self.named_chief:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.task_id == 0


def cluster_config() -> dict | None:
    """``TF_CONFIG`` parsed (None when unset); a one-line error when it is not the JSON TensorFlow expects."""
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return None
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        workers = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
        if not workers or task["type"] not in cluster or not 0 <= int(task["index"]) < len(cluster[task["type"]]):
            raise ValueError("the task is not one of the cluster's")
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ConfigError(f"TF_CONFIG: expected {{\"cluster\": {{\"worker\": [\"host:port\", ...]}}, \"task\": "
                          f"{{\"type\": \"worker\", \"index\": N}}}} ({err})") from None
    return config


def worker_role() -> WorkerRole:
    config = cluster_config()
    if config is None:
        return WorkerRole()
    workers = len(config["cluster"].get("chief", [])) + len(config["cluster"].get("worker", []))
    return WorkerRole(config["task"]["type"], int(config["task"]["index"]), workers, "chief" in config["cluster"])


def choose_strategy() -> tf.distribute.Strategy:
    """The strategy of this run (module docstring); call it before any other TensorFlow op of the process when
    ``TF_CONFIG`` is set (collective ops are configured at start-up)."""
    if cluster_config() is not None:
        communication = tf.distribute.experimental.CommunicationImplementation
        gpus = tf.config.list_physical_devices("GPU")
        options = tf.distribute.experimental.CommunicationOptions(
            implementation=communication.NCCL if gpus else communication.RING)
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    if len(gpus) == 1:
        return tf.distribute.OneDeviceStrategy(gpus[0].name)
    return tf.distribute.get_strategy()


STRATEGY_NAMES = {"_DefaultDistributionStrategy": "default (one device, no distribution)",
                  "CollectiveAllReduceStrategy": "MultiWorkerMirroredStrategy"}


def strategy_name(strategy) -> str:
    name = type(strategy).__name__
    return STRATEGY_NAMES.get(name, name)


def use_mixed_precision(setting: str) -> str:
    """Set the global dtype policy before a model is built: mixed_float16 on a GPU ('auto') or when 'on'; returns
    the policy's name."""
    on = setting == "on" or (setting == "auto" and bool(tf.config.list_physical_devices("GPU")))
    keras.mixed_precision.set_global_policy("mixed_float16" if on else "float32")
    return keras.mixed_precision.global_policy().name


def global_batch(hparams: HParams, replicas: int) -> int:
    return hparams.batch * replicas


def lr_scale(hparams: HParams, replicas: int) -> float:
    """The factor every learning rate is multiplied by: the replicas (linear rule) with ``scale_lr``, else 1."""
    return float(replicas) if hparams.scale_lr and replicas > 1 else 1.0


@dataclass(frozen=True)
class Placement:
    """The strategy of a run with what follows from it; ``record`` is the environment block (environment.json)."""

    strategy: object
    policy: str
    replicas: int
    global_batch: int
    lr_scale: float
    role: WorkerRole

    @classmethod
    def make(cls, hparams: HParams, strategy=None) -> "Placement":
        strategy = strategy or choose_strategy()
        policy = use_mixed_precision(hparams.mixed_precision)
        replicas = int(strategy.num_replicas_in_sync)
        return cls(strategy, policy, replicas, global_batch(hparams, replicas), lr_scale(hparams, replicas),
                   worker_role())

    def record(self, hparams: HParams) -> dict:
        build = dict(tf.sysconfig.get_build_info())
        threads = tf.config.threading.get_intra_op_parallelism_threads()
        return {
            "devices": devices(),
            "tensorflow": tf.__version__,
            "cuda_build": build.get("cuda_version") if build.get("is_cuda_build") else None,
            "cudnn_build": build.get("cudnn_version") if build.get("is_cuda_build") else None,
            "dtype_policy": self.policy,
            "mixed_precision": hparams.mixed_precision,
            "strategy": strategy_name(self.strategy),
            "replicas": self.replicas,
            "workers": {k: v for k, v in asdict(self.role).items() if k != "named_chief"}
                       | {"chief": self.role.is_chief},
            "batch_per_replica": hparams.batch,
            "global_batch": self.global_batch,
            "lr_scale": self.lr_scale,
            "lr_rule": ("linear: every learning rate x replicas, scale_lr=true" if self.lr_scale != 1
                        else "as configured: one replica, or scale_lr=false"),
            "intra_op_threads": threads or os.cpu_count(),
            "intra_op_threads_setting": hparams.workers,
            "python": platform.python_version(),
            "platform": platform.platform(),
        }


def devices() -> list[dict]:
    """Every physical device TensorFlow sees: name and memory (GPUs from nvidia-smi where it answers)."""
    found = []
    smi = _nvidia_smi()
    for index, gpu in enumerate(tf.config.list_physical_devices("GPU")):
        details = tf.config.experimental.get_device_details(gpu)
        name, memory = smi[index] if index < len(smi) else (details.get("device_name", gpu.name), None)
        found.append({"device": gpu.name, "name": name, "memory_mib": memory,
                      "compute_capability": ".".join(map(str, details.get("compute_capability", ()))) or None})
    for cpu in tf.config.list_physical_devices("CPU"):
        found.append({"device": cpu.name, "name": _cpu_name(), "memory_mib": _memory_mib(), "cores": os.cpu_count()})
    return found


def _nvidia_smi() -> list[tuple[str, int | None]]:
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        proc = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
                              capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return []
    rows = []
    for line in proc.stdout.splitlines() if proc.returncode == 0 else []:
        name, _, memory = line.rpartition(",")
        rows.append((name.strip(), int(memory) if memory.strip().isdigit() else None))
    return rows


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_mib() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1 << 20)
    except (ValueError, OSError, AttributeError):
        return None


def summary_lines(record: dict) -> list[str]:
    """The environment block as log lines (one idea a line)."""
    gpus = [d for d in record["devices"] if "GPU" in d["device"]]
    cpu = next((d for d in record["devices"] if "CPU" in d["device"]), {})
    gpu_text = ", ".join(f"{d['name']} ({d['memory_mib']} MiB)" if d["memory_mib"] else d["name"] for d in gpus)
    return [
        f"devices: {gpu_text or 'no GPU'}; CPU {cpu.get('name', '?')}, {cpu.get('cores', '?')} cores, "
        f"{cpu.get('memory_mib', '?')} MiB",
        f"TensorFlow {record['tensorflow']}, CUDA build {record['cuda_build'] or '-'}, cuDNN build "
        f"{record['cudnn_build'] or '-'}",
        f"dtype policy {record['dtype_policy']} (mixed_precision={record['mixed_precision']})",
        f"strategy {record['strategy']}, {record['replicas']} replica(s)"
        + (f", worker {record['workers']['task_type']} {record['workers']['task_id']} of "
           f"{record['workers']['workers']}" if record["workers"]["workers"] > 1 else ""),
        f"global batch {record['global_batch']} ({record['batch_per_replica']} per replica), learning rates x "
        f"{record['lr_scale']:g} ({record['lr_rule']})",
        f"intra-op threads {record['intra_op_threads']}",
    ]
