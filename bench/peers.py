"""The peers of `hybrid bench-peers`: the bench's three problems in PyTorch, eager and TorchScript.

Fisher-KPP 1-D (no flux), Gray-Scott 2-D (periodic) and Lorenz-96, RK4, float64, forward + backward of
L = sum of the final state squared (all fields), gradients with respect to the parameters' values.

Started by `hybrid bench-peers` (src/Hybrid.Cli/PeerBench.fs), which embeds this file. It talks JSON lines on
standard input and output, so Hybrid's runs and these are interleaved in one sitting:

  first line in:  {"threads": 2, "cases": [{"kind": "fisher" | "grayscott" | "lorenz96", "n": cells per axis,
                   "steps": 1000, "dt": 0.01, "theta": [parameter values], "u0": [[field values, row-major]]}]}
  first line out: {"torch": "1.13.1", "threads": 2}
  then in:        {"case": 0, "mode": "eager" | "script"}
  out:            {"ms": forward + backward in milliseconds, "loss": L, "grad": [dL/dtheta]}

With --quick it runs a tiny Fisher-KPP problem by itself in both modes and prints the two results.
"""

import ctypes
import gc
import json
import sys
import time
from typing import List

import torch


def fisher_rhs(u: torch.Tensor, d: torch.Tensor, r: torch.Tensor, dx: float) -> torch.Tensor:
    # Ghost cells copy the edge cells (no flux), face fluxes D (u_{i+1} - u_i) / dx, their differences / dx.
    p = torch.cat([u[:, :1], u, u[:, -1:]], 1)
    flux = d * (p[:, 1:] - p[:, :-1]) / dx
    return (flux[:, 1:] - flux[:, :-1]) / dx + r * u * (1.0 - u)


def laplacian(w: torch.Tensor, h: float) -> torch.Tensor:
    # Periodic five-point Laplacian.
    px = torch.cat([w[:, -1:, :], w, w[:, :1, :]], 1)
    py = torch.cat([w[:, :, -1:], w, w[:, :, :1]], 2)
    return (px[:, 2:, :] - 2.0 * w + px[:, :-2, :]) / (h * h) + (py[:, :, 2:] - 2.0 * w + py[:, :, :-2]) / (h * h)


def grayscott_rhs(u: torch.Tensor, v: torch.Tensor, theta: List[torch.Tensor], h: float) -> List[torch.Tensor]:
    uvv = u * v * v
    return [
        theta[0] * laplacian(u, h) - uvv + theta[2] * (1.0 - u),
        theta[1] * laplacian(v, h) + uvv - (theta[2] + theta[3]) * v,
    ]


def lorenz96_rhs(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    # dX_k/dt = (X_{k+1} - X_{k-2}) X_{k-1} - X_k + F on a ring.
    return (torch.roll(x, -1, 1) - torch.roll(x, 2, 1)) * torch.roll(x, 1, 1) - x + f


def rhs(kind: str, s: List[torch.Tensor], theta: List[torch.Tensor], h: float) -> List[torch.Tensor]:
    if kind == "fisher":
        return [fisher_rhs(s[0], theta[0], theta[1], h)]
    if kind == "grayscott":
        return grayscott_rhs(s[0], s[1], theta, h)
    return [lorenz96_rhs(s[0], theta[0])]


def rollout(kind: str, u: List[torch.Tensor], theta: List[torch.Tensor], dt: float, steps: int, h: float) -> torch.Tensor:
    """`steps` classical RK4 steps; returns L = sum of the final fields squared."""
    for _ in range(steps):
        k1 = rhs(kind, u, theta, h)
        k2 = rhs(kind, [u[i] + (0.5 * dt) * k1[i] for i in range(len(u))], theta, h)
        k3 = rhs(kind, [u[i] + (0.5 * dt) * k2[i] for i in range(len(u))], theta, h)
        k4 = rhs(kind, [u[i] + dt * k3[i] for i in range(len(u))], theta, h)
        # The step as Hybrid's kernel stepper sums it, weight by weight (u + Δt·bᵢ·kᵢ, i = 1 … 4): the same
        # rounding, which matters on Lorenz-96, whose chaos amplifies any difference over 1,000 steps.
        u = [
            u[i] + (dt * (1.0 / 6.0)) * k1[i] + (dt * (1.0 / 3.0)) * k2[i] + (dt * (1.0 / 3.0)) * k3[i] + (dt * (1.0 / 6.0)) * k4[i]
            for i in range(len(u))
        ]
    loss = torch.zeros((), dtype=u[0].dtype)
    for x in u:
        loss = loss + (x * x).sum()
    return loss


scripted = torch.jit.script(rollout)


def settle():
    """Frees garbage, then consolidates glibc's heap (malloc_trim), as Hybrid's side does before each timed run:
    otherwise the first large allocation of a run walks every small block the previous run freed."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


class Case:
    def __init__(self, spec):
        self.kind = spec["kind"]
        self.n = int(spec["n"])
        self.steps = int(spec["steps"])
        self.dt = float(spec["dt"])
        self.theta = [float(t) for t in spec["theta"]]
        shape = [1, self.n] if self.kind != "grayscott" else [1, self.n, self.n]
        self.u0 = [torch.tensor(f, dtype=torch.float64).reshape(shape) for f in spec["u0"]]
        # Cell width on the unit interval or square (the ring of Lorenz-96 has none).
        self.h = 1.0 / self.n

    def run(self, mode: str):
        theta = [torch.tensor(t, dtype=torch.float64, requires_grad=True) for t in self.theta]
        settle()
        start = time.perf_counter()
        f = scripted if mode == "script" else rollout
        loss = f(self.kind, self.u0, theta, self.dt, self.steps, self.h)
        loss.backward()
        ms = (time.perf_counter() - start) * 1000.0
        return {"ms": ms, "loss": loss.item(), "grad": [t.grad.item() for t in theta]}


def serve():
    setup = json.loads(sys.stdin.readline())
    torch.set_num_threads(int(setup["threads"]))
    cases = [Case(c) for c in setup["cases"]]
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        command = json.loads(line)
        print(json.dumps(cases[int(command["case"])].run(command["mode"])), flush=True)


def quick():
    import math

    n = 16
    u0 = [[math.exp(-100.0 * ((i + 0.5) / n - 0.5) ** 2) for i in range(n)]]
    case = Case({"kind": "fisher", "n": n, "steps": 20, "dt": 0.01, "theta": [1e-4, 1.0], "u0": u0})
    for mode in ["eager", "script"]:
        print(mode, json.dumps(case.run(mode)))


if __name__ == "__main__":
    if "--quick" in sys.argv:
        quick()
    else:
        serve()
