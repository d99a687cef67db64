"""An optimizer's update rule applied out of place, to unroll a network's training.

The unrolled GAN (Metz et al. 2017, sec. 2.2) scores G against D after k more updates of D
made with D's own optimizer. ``FunctionalOptimizer`` reads a torch optimizer's
hyper-parameters (``param_groups``) and copies its state (Adam's ``exp_avg``,
``exp_avg_sq`` and ``step``, RMSprop's ``square_avg``, SGD's ``momentum_buffer``), then
applies the same arithmetic as torch's single-tensor implementations to plain tensors,
out of place: the real optimizer and its parameters are never touched, and the new
parameters keep an autograd graph when the gradients have one (second order).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from ganlab.errors import UserError

State = dict[str, Any]
Rule = Callable[[Tensor, Tensor, State, Mapping[str, Any]], tuple[Tensor, State]]


def _sqrt(x: Tensor) -> Tensor:
    """sqrt(x) for x >= 0 whose gradient at 0 is 0, not inf (inf x 0 = NaN in the second-order
    graph of a parameter whose gradient has always been exactly 0, e.g. a dead unit); the
    values are torch's ``sqrt``."""
    positive = x > 0
    return torch.where(positive, torch.where(positive, x, 1.0).sqrt(), 0.0)


def _grad(p: Tensor, g: Tensor, h: Mapping[str, Any], coupled_decay: bool = True) -> Tensor:
    """The gradient the rule uses: sign for ``maximize``, L2 weight decay added."""
    g = -g if h.get("maximize") else g
    if coupled_decay and h.get("weight_decay"):
        g = g.add(p, alpha=h["weight_decay"])
    return g


def adam(p: Tensor, g: Tensor, s: State, h: Mapping[str, Any]) -> tuple[Tensor, State]:
    """Adam (Kingma & Ba 2015, Alg. 1) and AdamW (Loshchilov & Hutter 2019), as
    ``torch.optim.adam._single_tensor_adam``."""
    beta1, beta2 = (float(b) for b in h["betas"])
    lr, decoupled = float(h["lr"]), bool(h.get("decoupled_weight_decay"))
    g = _grad(p, g, h, coupled_decay=not decoupled)
    if decoupled and h.get("weight_decay"):
        p = p * (1 - lr * h["weight_decay"])
    step = s["step"] + 1
    m = torch.lerp(s["exp_avg"], g, 1 - beta1)
    v = torch.addcmul(s["exp_avg_sq"] * beta2, g, g, value=1 - beta2)
    new = {"step": step, "exp_avg": m, "exp_avg_sq": v}
    if h.get("amsgrad"):
        v = new["max_exp_avg_sq"] = torch.maximum(s["max_exp_avg_sq"], v)
    denom = _sqrt(v) / (1 - beta2**step) ** 0.5 + h["eps"]
    return torch.addcdiv(p, m, denom, value=-lr / (1 - beta1**step)), new


def rmsprop(p: Tensor, g: Tensor, s: State, h: Mapping[str, Any]) -> tuple[Tensor, State]:
    """RMSprop (Tieleman & Hinton 2012; centered: Graves 2013), as torch's."""
    alpha, lr, momentum = float(h["alpha"]), float(h["lr"]), float(h["momentum"])
    g = _grad(p, g, h)
    square = torch.addcmul(s["square_avg"] * alpha, g, g, value=1 - alpha)
    new = {"step": s["step"] + 1, "square_avg": square}
    if h.get("centered"):
        mean = new["grad_avg"] = torch.lerp(s["grad_avg"], g, 1 - alpha)
        avg = _sqrt(torch.addcmul(square, mean, mean, value=-1))
    else:
        avg = _sqrt(square)
    avg = avg + h["eps"]
    if momentum > 0:
        buf = new["momentum_buffer"] = torch.addcdiv(s["momentum_buffer"] * momentum, g, avg)
        return p.add(buf, alpha=-lr), new
    return torch.addcdiv(p, g, avg, value=-lr), new


def sgd(p: Tensor, g: Tensor, s: State, h: Mapping[str, Any]) -> tuple[Tensor, State]:
    """SGD with momentum, dampening and Nesterov momentum (Sutskever et al. 2013), as torch's."""
    momentum, lr = float(h["momentum"]), float(h["lr"])
    g = _grad(p, g, h)
    new: State = {}
    if momentum:
        buf = s.get("momentum_buffer")
        buf = g if buf is None else torch.add(buf * momentum, g, alpha=1 - h["dampening"])
        new["momentum_buffer"] = buf
        g = g.add(buf, alpha=momentum) if h.get("nesterov") else buf
    return p.add(g, alpha=-lr), new


#: torch optimizer class name -> (rule, the state it starts from when the optimizer has none)
RULES: dict[str, tuple[Rule, Callable[[Tensor, Mapping[str, Any]], State]]] = {
    "Adam": (adam, lambda p, h: {"step": 0.0, "exp_avg": torch.zeros_like(p),
                                 "exp_avg_sq": torch.zeros_like(p),
                                 **({"max_exp_avg_sq": torch.zeros_like(p)}
                                    if h.get("amsgrad") else {})}),
    "RMSprop": (rmsprop, lambda p, h: {"step": 0.0, "square_avg": torch.zeros_like(p),
                                       **({"grad_avg": torch.zeros_like(p)}
                                          if h.get("centered") else {}),
                                       **({"momentum_buffer": torch.zeros_like(p)}
                                          if h.get("momentum", 0) > 0 else {})}),
    "SGD": (sgd, lambda p, h: {}),
}  # fmt: skip
RULES["AdamW"] = RULES["Adam"]  # the decoupled decay is a flag of its param_groups


def check_supported(optimizer: torch.optim.Optimizer, key: str = "optim.d") -> None:
    """``UserError`` (one line) for an optimizer whose rule cannot be unrolled here."""
    name = type(optimizer).__name__
    if name not in RULES or type(optimizer).__module__.split(".")[:2] != ["torch", "optim"]:
        raise UserError(
            f"the unrolled GAN unrolls D with its own optimizer's rule, and {key} is "
            f"{type(optimizer).__module__}.{name}: use torch.optim.{'|'.join(sorted(RULES))}"
        )


def _copy(key: str, value: Any) -> Any:
    """A detached copy of a state entry; the step count as a Python float, as torch's
    non-capturable rules read it."""
    if key == "step":
        return float(value)
    return value.detach().clone() if isinstance(value, Tensor) else value


class FunctionalOptimizer:
    """``optimizer``'s rule over the named tensors ``params`` (the same tensors, or their
    names, as the optimizer holds), starting from a copy of its state.

    ``step(params, grads)`` returns the updated parameters out of place and advances the
    copied state; the optimizer, its state and the network are left as they were.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, params: Mapping[str, Tensor]) -> None:
        check_supported(optimizer)
        rule, initial = RULES[type(optimizer).__name__]
        groups = {id(p): g for g in optimizer.param_groups for p in g["params"]}
        missing = [name for name, p in params.items() if id(p) not in groups]
        if missing:
            raise ValueError(f"FunctionalOptimizer: the optimizer does not hold {missing[:3]}")
        self.rule = rule
        self.hyper = {name: groups[id(p)] for name, p in params.items()}
        self.state = {
            name: {k: _copy(k, v) for k, v in optimizer.state[p].items()}
            if optimizer.state.get(p)
            else initial(p.detach(), self.hyper[name])
            for name, p in params.items()
        }

    def step(self, params: Mapping[str, Tensor], grads: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """One update of every named parameter; returns the new parameters."""
        out = {}
        for name, p in params.items():
            out[name], self.state[name] = self.rule(p, grads[name], self.state[name],
                                                    self.hyper[name])  # fmt: skip
        return out
