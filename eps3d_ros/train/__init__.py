"""Training EPS3D by distillation (the release has no training code): losses, teachers, data, trainer.

    from eps3d_ros.train import load_train_config, train
    summary = train("config/train_demo.yaml")          # or: eps3d train --config config/train_demo.yaml

See :mod:`.losses` (the paper's terms), :mod:`.teachers` (ground truth and the on-disk teacher
format), :mod:`.datasets` with :mod:`.scene_dataset` (real datasets; :mod:`.dataset_from_config`),
:mod:`.config` and :mod:`.trainer`. The trainer's parts: :mod:`.sample_stream` (which samples a rank
draws), :mod:`.step_losses`, :mod:`.distributed` (ranks, DDP) with :mod:`.rank_watch`, :mod:`.schedule`,
:mod:`.checkpoints`, :mod:`.run_log` with :mod:`.run_usage` (CPU / wall hours), :mod:`.builders`;
:mod:`.launch` is the command (``eps3d train``, ``python -m eps3d_ros.train`` under torchrun);
:mod:`.learning_curve` plots a run's held-out metrics against CPU-hours. The held-out evaluation is
:mod:`eps3d_ros.eval.model_eval`, text encoders and their files :mod:`eps3d_ros.text` and
:mod:`eps3d_ros.model.bundle`.
"""

from typing import TYPE_CHECKING, Any

# Names load on first use (PEP 562): `eps3d --help` builds the `train` parser from .launch without torch.
_WHERE = {
    "TrainConfig": "config", "load_train_config": "config",
    "Sample": "datasets", "SyntheticDataset": "datasets", "RecordedDataset": "datasets",
    "LossConfig": "losses", "rgb_loss": "losses", "semantic_loss": "losses", "instance_infonce": "losses",
    "ins2sem_loss": "losses", "depth_loss": "losses", "camera_loss": "losses", "total_loss": "losses",
    "TeacherTargets": "teachers", "GroundTruthTeacher": "teachers", "FileTeacher": "teachers",
    "write_recording": "teachers", "read_recording": "teachers",
    "Trainer": "trainer", "train": "trainer",
    "write_resume_state": "resume_state", "read_resume_state": "resume_state",
}


def __getattr__(name: str) -> Any:
    import importlib

    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    try:  # a submodule, as `eps3d_ros.train.losses` was reachable once the package imported it
        return importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{name}":
            raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if TYPE_CHECKING:  # what type checkers and IDEs see
    from .config import TrainConfig, load_train_config
    from .datasets import RecordedDataset, Sample, SyntheticDataset
    from .losses import (
        LossConfig,
        camera_loss,
        depth_loss,
        ins2sem_loss,
        instance_infonce,
        rgb_loss,
        semantic_loss,
        total_loss,
    )
    from .resume_state import read_resume_state, write_resume_state
    from .teachers import (
        FileTeacher,
        GroundTruthTeacher,
        TeacherTargets,
        read_recording,
        write_recording,
    )
    from .trainer import Trainer, train

__all__ = [
    "TrainConfig",
    "load_train_config",
    "Sample",
    "SyntheticDataset",
    "RecordedDataset",
    "LossConfig",
    "rgb_loss",
    "semantic_loss",
    "instance_infonce",
    "ins2sem_loss",
    "depth_loss",
    "camera_loss",
    "total_loss",
    "TeacherTargets",
    "GroundTruthTeacher",
    "FileTeacher",
    "write_recording",
    "read_recording",
    "Trainer",
    "train",
    "write_resume_state",
    "read_resume_state",
]
