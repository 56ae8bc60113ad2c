"""``torchfluid demo``: train a small regression model with Paddle-exact RMSProp and show
the loss falling, next to torch.optim.RMSprop on the same model and data."""

from __future__ import annotations

import torch

from ..optimizer import RMSProp


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="train a small model with torchfluid RMSProp")
    p.add_argument("--epochs", type=int, default=20, help="epochs (default 20)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(run=run)


def _data(seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(512, 13, generator=g)
    w = torch.randn(13, 1, generator=g)
    y = x @ w + 0.1 * torch.randn(512, 1, generator=g)
    return x, y


def _model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(13, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))


def train(make_opt, epochs: int, seed: int, batch: int = 32) -> list[float]:
    x, y = _data(seed)
    model = _model(seed)
    opt = make_opt(model)
    losses = []
    for _ in range(epochs):
        total = 0.0
        for i in range(0, len(x), batch):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x[i:i + batch]), y[i:i + batch])
            loss.backward()
            opt.step()
            total += loss.item() * len(x[i:i + batch])
        losses.append(total / len(x))
    return losses


def run(args) -> int:
    ours = train(lambda m: RMSProp(0.01, momentum=0.9, centered=True, parameters=m.named_parameters()),
                 args.epochs, args.seed)
    ref = train(lambda m: torch.optim.RMSprop(m.parameters(), lr=0.01, momentum=0.9, centered=True),
                args.epochs, args.seed)
    print("epoch  torchfluid RMSProp   torch.optim.RMSprop   (train MSE, 13-feature regression)")
    for e, (a, b) in enumerate(zip(ours, ref), 1):
        print(f"{e:5d}  {a:18.6f}   {b:19.6f}")
    print(f"final loss {ours[-1]:.6f} (first epoch {ours[0]:.6f})")
    return 0
