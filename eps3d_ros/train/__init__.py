"""Training EPS3D by distillation (the release has no training code): losses, teachers, data, trainer.

    from eps3d_ros.train import load_train_config, train
    summary = train("config/train_demo.yaml")          # or: eps3d train --config config/train_demo.yaml

See :mod:`.losses` (the paper's terms), :mod:`.teachers` (ground truth and the on-disk teacher
format), :mod:`.datasets`, :mod:`.config` and :mod:`.trainer`; the held-out evaluation is
:mod:`eps3d_ros.eval.model_eval`, text encoders and their files :mod:`eps3d_ros.text` and
:mod:`eps3d_ros.model.bundle`.
"""

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
from .teachers import (
    FileTeacher,
    GroundTruthTeacher,
    TeacherTargets,
    read_recording,
    write_recording,
)
from .resume_state import read_resume_state, write_resume_state
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
