"""Gradient norms and the collectives of GAN training under data parallelism: gradients
averaged once per update, BatchNorm buffers and diagnostics shared across ranks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn


def grad_norm(params: Iterable[nn.Parameter]) -> Tensor:
    """L2 norm of all gradients of ``params`` (0 when none)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def average_gradients(params: Iterable[nn.Parameter], world_size: int) -> None:
    """Average the gradients of ``params`` over all processes with one flattened all_reduce.

    The GAN training loops of StyleGAN2-ADA/StyleGAN3 do this instead of relying on
    DistributedDataParallel's reducer, which assumes one backward per forward and does
    not support the double backward of a gradient penalty. Called once per update,
    after the backward and before the optimizer step.
    """
    if world_size < 2:
        return
    params = [p for p in params if p.grad is not None]
    if not params:
        return
    flat = torch.cat([p.grad.flatten() for p in params])
    torch.distributed.all_reduce(flat)
    flat /= world_size
    for p, g in zip(params, flat.split([p.numel() for p in params]), strict=True):
        p.grad.copy_(g.view_as(p))


def broadcast_buffers(module: nn.Module, world_size: int) -> None:
    """Give every process rank 0's floating-point buffers (BatchNorm running statistics)
    with one flattened broadcast, as DistributedDataParallel's ``broadcast_buffers`` does:
    each rank normalizes its own batch, so the running statistics drift apart otherwise."""
    if world_size < 2:
        return
    buffers = [b for b in module.buffers() if b.is_floating_point()]
    if not buffers:
        return
    flat = torch.cat([b.flatten() for b in buffers])
    torch.distributed.broadcast(flat, src=0)
    for b, value in zip(buffers, flat.split([b.numel() for b in buffers]), strict=True):
        b.copy_(value.view_as(b))


def mean_over_ranks(stats: dict[str, Tensor], world_size: int) -> dict[str, Tensor]:
    """Per-rank diagnostics averaged over all processes with one all_reduce (equal batches:
    the statistics of all samples). Every rank gets the same values, so decisions taken on
    them (divergence stop, health flags) agree across ranks."""
    if world_size < 2:
        return stats
    keys = sorted(stats)
    flat = torch.stack([stats[k].detach().double().reshape(()) for k in keys])
    torch.distributed.all_reduce(flat)
    flat /= world_size
    return dict(zip(keys, flat.unbind(), strict=True))


class _SumOverRanks(torch.autograd.Function):
    """all_reduce (sum) with a backward: the gradient of a sum over ranks is the sum of the
    ranks' gradients (as ``torch.distributed.nn.functional.all_reduce``, now deprecated)."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor) -> Tensor:
        out = tensor.clone(memory_format=torch.contiguous_format)
        torch.distributed.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return _SumOverRanks.apply(grad)


def world_size() -> int:
    """Processes of the default process group (1 when torch.distributed is not initialized)."""
    dist = torch.distributed
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def mean_tensors_over_ranks(tensors: Sequence[Tensor], differentiable: bool) -> list[Tensor]:
    """``tensors`` averaged over all processes with one flattened all_reduce, out of place;
    ``differentiable`` keeps the graph (a gradient through the average reaches every rank's
    inputs). Returned as they are with one process."""
    world = world_size()
    if world < 2 or not tensors:
        return list(tensors)
    flat = torch.cat([t.reshape(-1) for t in tensors])
    if differentiable:
        flat = _SumOverRanks.apply(flat)
    else:
        flat = flat.detach().clone()
        torch.distributed.all_reduce(flat)
    flat = flat / world
    return [f.view_as(t) for f, t in zip(flat.split([t.numel() for t in tensors]), tensors,
                                         strict=True)]  # fmt: skip


def rank() -> int:
    """This process's rank in the default process group (0 when not initialized)."""
    dist = torch.distributed
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def share_slice(n: int, world: int, rank: int) -> slice:
    """Rank ``rank``'s rows of ``n`` split in ``world`` shares of ceil(n / world) in rank
    order (the last share may be shorter, or empty): concatenated, they are rows 0..n-1."""
    share = -(-n // world)
    return slice(min(rank * share, n), min((rank + 1) * share, n))


def gather_shares(parts: dict[str, Tensor], n: int) -> dict[str, Tensor]:
    """Each rank's rows ``share_slice(n, world, rank)`` of some (n, ...) tensors, gathered
    on every rank in rank order: the (n, ...) tensors one process would hold, on the CPU.
    Shares are padded to equal length for ``all_gather`` and the padding is dropped.
    Returned as they are (on the CPU) with one process."""
    world = world_size()
    if world < 2:
        return {k: v.cpu() for k, v in parts.items()}
    share = -(-n // world)
    nccl = torch.distributed.get_backend() == "nccl"  # NCCL gathers CUDA tensors only
    device = torch.device("cuda", torch.cuda.current_device()) if nccl else torch.device("cpu")
    out = {}
    for key in sorted(parts):  # the same order on every rank
        value = parts[key].to(device)
        padded = value.new_zeros(share, *value.shape[1:])
        padded[: len(value)] = value
        gathered = [torch.empty_like(padded) for _ in range(world)]
        torch.distributed.all_gather(gathered, padded)
        out[key] = torch.cat(gathered)[:n].cpu()  # (world * share, ...) -> (n, ...)
    return out


def all_ranks(values: list[int]) -> list[list[int]]:
    """Every rank's ``values`` (the same length on every rank), as a list per rank."""
    world = world_size()
    if world < 2:
        return [list(values)]
    mine = torch.tensor(values, dtype=torch.int64)
    if torch.distributed.get_backend() == "nccl":
        mine = mine.cuda()
    gathered = [torch.empty_like(mine) for _ in range(world)]
    torch.distributed.all_gather(gathered, mine)
    return [g.tolist() for g in gathered]
