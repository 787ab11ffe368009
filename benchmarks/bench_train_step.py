"""Training-step time of a CPU network with the IsoMax+ / IsoMax head vs the SoftMax head.

One step = forward, loss, backward and SGD update, on a batch of the model's input size, with the
heads and losses as users get them (default arguments, validation on). The
heads are timed in interleaved rounds in one process so that machine load affects them alike;
the median per head is reported with the ratio to SoftMax (target: IsoMax+ / SoftMax <= 1.03).

    python benchmarks/bench_train_step.py [--model cnn-28] [--batch-size 128] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from isomax import make_loss
from isomax.models import create_model

HEADS = ("softmax", "isomax", "isomaxplus")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="cnn-28")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, default=10, help="steps per head per round")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    setups = {}
    for head in HEADS:
        torch.manual_seed(0)
        model = create_model(args.model, num_classes=10, head=head)
        loss_fn = make_loss(head)  # default arguments, as users get them (validation on)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
        setups[head] = (model, loss_fn, opt)
    x = torch.randn(args.batch_size, *model.input_size)
    y = torch.randint(0, 10, (args.batch_size,))

    def step(head):
        model, loss_fn, opt = setups[head]
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    for head in HEADS:  # warm-up
        for _ in range(3):
            step(head)
    times = {h: [] for h in HEADS}
    for r in range(args.rounds):
        for head in HEADS[r % 3 :] + HEADS[: r % 3]:  # rotate the order so that none always runs first
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step(head)
            times[head].append((time.perf_counter() - t0) / args.steps)
    med = {h: statistics.median(v) for h, v in times.items()}
    print(
        f"{args.model}, batch {args.batch_size}, input {tuple(model.input_size)}, {args.threads} threads, "
        f"median of {args.rounds} interleaved rounds x {args.steps} steps"
    )
    for head in HEADS:
        print(f"  {head:<11} {1e3 * med[head]:8.2f} ms/step   ratio to softmax {med[head] / med['softmax']:.3f}")
    print(f"ratio isomaxplus/softmax = {med['isomaxplus'] / med['softmax']:.3f} (target <= 1.03)")


if __name__ == "__main__":
    main()
