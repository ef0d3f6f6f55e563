"""The distributed strategy: ranks from the launcher's environment, DistributedDataParallel, barriers.

``torchrun`` (or ``srun`` + ``torchrun``) sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and
``MASTER_ADDR`` / ``MASTER_PORT``. With ``WORLD_SIZE > 1`` :meth:`Ranks.from_env` joins the process
group — NCCL on CUDA (one GPU per local rank, ``cuda:LOCAL_RANK``), gloo on CPU — with
``run.dist_timeout_s`` as the collectives' timeout, plus a gloo group for the host-side control
traffic (barriers, log statistics), and starts the heartbeats of :mod:`.rank_watch`. Without a
launcher (``WORLD_SIZE`` unset or 1) it is one rank with no process group, and every method is the
single-process no-op: training runs the same code either way.

Gradients are averaged over ranks by DDP (each rank's loss is the mean over its samples, so the
average is the global batch mean); ``no_sync`` on the inner micro-steps of ``optim.accumulate`` keeps
them local until the last. Frozen parameters (``requires_grad=False``) are not DDP's concern.
``find_unused_parameters`` (a graph walk after every forward) is only turned on when steps differ in
the loss terms they compute (:func:`needs_unused_parameter_search`): then a parameter that only a
rendered term reaches gets no gradient on the other steps, which DDP would otherwise wait for.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import torch
from torch import nn

from ..devices import resolve_device
from ..process.threads import resolve_threads
from .config import TrainConfig

log = logging.getLogger(__name__)

__all__ = ["Ranks", "rank_device", "rank_threads", "needs_unused_parameter_search", "TrainingAborted",
           "under_launcher"]


# what gloo / NCCL / the store say when a peer is gone
_LOST_PEER = ("Connection closed by peer", "Connection reset", "Broken pipe", "NCCL communicator was aborted",
              "ProcessGroupNCCL", "ProcessGroupGloo", "Socket Timeout")


class TrainingAborted(RuntimeError):
    """A rank stopped because another rank failed; the message names that rank and its cause."""


def under_launcher() -> bool:
    """Whether this process was started by torchrun (or anything that sets ``RANK`` / ``WORLD_SIZE``)."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def rank_device(name: str, local_rank: int = 0, world_size: int = 1) -> torch.device:
    """``run.device`` for one rank (the name read by :func:`eps3d_ros.devices.resolve_device`): several ranks on
    CUDA take ``cuda:LOCAL_RANK`` each."""
    dev = resolve_device(name, "run.device")
    if dev.type == "cuda" and world_size > 1:
        if str(name).strip().startswith("cuda:"):
            raise ValueError(f"run.device {name!r} names one GPU, but {world_size} ranks take one GPU each "
                             "(cuda:LOCAL_RANK): use 'cuda' or 'auto'")
        if local_rank >= torch.cuda.device_count():
            raise ValueError(f"local rank {local_rank} has no GPU: this node has {torch.cuda.device_count()}; "
                             "start at most that many processes per node (--nproc-per-node)")
        dev = torch.device("cuda", local_rank)
    return dev


def rank_threads(setting: int, local_ranks: int = 1) -> int:
    """``run.num_threads`` for one of ``local_ranks`` ranks on this node, as ``model.threads`` reads it
    (:mod:`eps3d_ros.process.threads`): ``-1`` (all cores but one) is shared by the node's ranks, at least one
    thread each, so that N ranks do not start N x (cores - 1) spin-waiting threads; ``0`` and ``N`` as given."""
    if setting != -1 or local_ranks <= 1:
        return setting
    return max(1, resolve_threads(-1) // local_ranks)


def needs_unused_parameter_search(config: TrainConfig) -> bool:
    """``run.find_unused_parameters``, with ``auto`` = whether steps differ in the terms they compute."""
    choice = config.run.find_unused_parameters
    if choice != "auto":
        return bool(choice)
    r = config.render
    rendered = any(config.loss.weights()[k] for k in ("rgb", "semantic", "instance", "semantic_ce"))
    return bool(config.loss.start) or (rendered and (r.every > 1 or r.start_step > 0))


@dataclass
class Ranks:
    """This process's place in the job, and the few collective operations training needs."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: str = ""  # "" = no process group (one rank)
    timeout_s: float = 1800.0
    local_world_size: int = 1  # ranks on this node (torchrun's LOCAL_WORLD_SIZE)
    _control: Any = None  # gloo group for host-side traffic (None = the default group)
    _owns_group: bool = False
    _watch: Any = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_env(cls, config: TrainConfig) -> "Ranks":
        """Join the job the environment describes (see the module docstring); one rank without a launcher."""
        env = os.environ
        world = int(env.get("WORLD_SIZE", "1"))
        rank, local = int(env.get("RANK", "0")), int(env.get("LOCAL_RANK", "0"))
        r = config.run
        device = rank_device(r.device, local, world)
        if world <= 1:
            return cls(device=device, timeout_s=r.dist_timeout_s)
        import torch.distributed as dist

        backend = "nccl" if device.type == "cuda" else "gloo"
        out = cls(rank, world, local, device, backend, r.dist_timeout_s,
                  local_world_size=int(env.get("LOCAL_WORLD_SIZE", "1")))
        if device.type == "cuda":
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            kwargs = {}
            if device.type == "cuda" and "device_id" in inspect.signature(dist.init_process_group).parameters:
                kwargs["device_id"] = device  # NCCL binds this rank's GPU at once (torch >= 2.3)
            dist.init_process_group(backend, timeout=timedelta(seconds=r.dist_timeout_s), **kwargs)
            out._owns_group = True
        elif dist.get_world_size() != world:
            raise ValueError(f"a process group of {dist.get_world_size()} ranks exists, WORLD_SIZE says {world}")
        out._control = dist.new_group(backend="gloo") if backend != "gloo" else None
        if "MASTER_ADDR" in env and "MASTER_PORT" in env:
            from .rank_watch import RankWatch

            out._watch = RankWatch.connect(env["MASTER_ADDR"], int(env["MASTER_PORT"]), rank, world,
                                           timeout_s=r.peer_timeout_s).start()
        log.info("rank %d of %d (local rank %d) on %s, %s on %s", rank, world, local, socket.gethostname(), backend,
                 device)
        return out

    # ------------------------------------------------------------------------------- the model
    def wrap(self, module: nn.Module, find_unused_parameters: bool) -> nn.Module:
        """``module`` under DistributedDataParallel (several ranks), else ``module`` itself."""
        if not self.distributed:
            return module
        from torch.nn.parallel import DistributedDataParallel

        # the network's buffers are constants (normalisation, SH mask): no re-broadcast on every forward
        params = inspect.signature(DistributedDataParallel.__init__).parameters
        no_buffer_sync = {"forward_sync_buffers": False} if "forward_sync_buffers" in params else \
            {"broadcast_buffers": False}
        return DistributedDataParallel(
            module, device_ids=[self.device.index] if self.device.type == "cuda" else None,
            find_unused_parameters=find_unused_parameters, gradient_as_bucket_view=True, **no_buffer_sync)

    @staticmethod
    def sync(wrapped: nn.Module, sync: bool):
        """Context of one micro-step's backward: ``no_sync`` unless ``sync`` (the last micro-step)."""
        if sync or not hasattr(wrapped, "no_sync"):
            return contextlib.nullcontext()
        return wrapped.no_sync()

    # ---------------------------------------------------------------------------- host traffic
    def barrier(self) -> None:
        """Wait for every rank (``run.dist_timeout_s``); on gloo a rank that does not come is named."""
        if not self.distributed:
            return
        import torch.distributed as dist

        dist.monitored_barrier(group=self._control, timeout=timedelta(seconds=self.timeout_s), wait_all_ranks=True)

    def all_reduce_sum(self, values: torch.Tensor) -> torch.Tensor:
        """Element-wise sum over ranks of a CPU float64 tensor (log statistics)."""
        if self.distributed:
            import torch.distributed as dist

            dist.all_reduce(values, group=self._control)
        return values

    def all_gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (small picklable values), in rank order."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj, group=self._control)
        return out

    # ------------------------------------------------------------------------------ endings
    def fail(self, error: BaseException) -> BaseException:
        """The error to raise after ``error`` on this rank: a rank's own failure is published to the others;
        a failed collective waits briefly for the rank that caused it and names it."""
        if not self.distributed or self._watch is None:
            return error
        import torch.distributed as dist

        # A peer's death reaches this rank as an error of its own (gloo raises a RuntimeError from inside
        # backward): ask the heartbeats first, longer when the error looks like lost communication.
        text = f"{type(error).__name__}: {error}"
        lost = isinstance(error, getattr(dist, "DistError", ())) or any(s in text for s in _LOST_PEER)
        cause = self._watch.cause(wait_s=self._watch.timeout_s + 2 if lost else 4 * self._watch.interval_s)
        if cause is not None or lost:
            msg = f"rank {self.rank} stops: {cause or f'a collective failed ({text})'}"
            log.error(msg)
            return TrainingAborted(msg)
        msg = f"rank {self.rank} ({socket.gethostname()}, pid {os.getpid()}) failed: {text}"
        log.error(msg)
        self._watch.report_failure(msg)
        return error

    def close(self, done: bool = True) -> None:
        """Stop the heartbeats and leave the process group this object joined."""
        if self._watch is not None:
            self._watch.close(done)
            self._watch = None
        if self._owns_group:
            import torch.distributed as dist

            if done:
                dist.destroy_process_group()
            self._owns_group = False
