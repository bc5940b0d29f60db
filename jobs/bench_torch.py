#!/usr/bin/python3
"""PyTorch peer for jobs/bench-vs-pytorch.sh: the same model, data, batch size,
optimizer and thread count as a ranksweep config; prints training and
inference images/s as `torch train_ips=... eval_ips=...`.

usage: bench_torch.py {mlp,cnn} [--train N] --threads T [--batch 64] [--eval-batch 256] [--ddp P | --ddp-mpi]
                      [--optimizer sgd|adam --lr LR --epochs E]
       bench_torch.py {mlp,cnn} --infer OUT.h5 --threads T [--eval-batch 256]
With --epochs E > 1: one line per epoch, `torch epoch=K train_ips=... optimizer_s=...`
(optimizer_s: the time in opt.step() that epoch), before the summary line
(whose train_ips is the first epoch's).
Optimizers: SGD with momentum 0.9 (default, lr 0.01) or Adam (lr 1e-4,
betas 0.9/0.999, eps 1e-8: the TensorFlow tutorial's, ranksweep's defaults).
With --ddp P: P processes (torch.multiprocessing, gloo backend on localhost),
DistributedDataParallel, each taking its share of every global batch of
--batch samples; prints `torch ddp train_ips=...` (global images/s, the
slowest process's time).
With --ddp-mpi: the same, one process of P started by mpirun (rank and size
from Open MPI's environment; tests/cluster.sh places them on emulated nodes),
gloo over loopback; rank 0 prints the line.
With --infer: the job `ranksweep infer --top-k 5` does on the 10k test set,
timed the same way (read the gzip IDX file, normalise, forward, softmax,
top-5, write labels/probabilities/index with h5py); prints `torch infer_ips=...`.
"""
import argparse, gzip, time

import numpy as np
import torch
import torch.nn as nn

D = "/usr/share/datasets/fashion-mnist/"


def idx(path):
    with gzip.open(path, "rb") as f:
        b = f.read()
    nd = b[3]
    dims = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(b, np.uint8, offset=4 + 4 * nd).reshape(dims)


def model(kind):
    if kind == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                             nn.Linear(512, 10))
    return nn.Sequential(nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(3136, 1024), nn.ReLU(), nn.Dropout(0.5), nn.Linear(1024, 10))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["mlp", "cnn"])
    ap.add_argument("--train", type=int, default=55000)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--eval-batch", type=int, default=256)
    ap.add_argument("--infer", metavar="OUT.h5")
    ap.add_argument("--ddp", type=int, default=0)
    ap.add_argument("--ddp-mpi", action="store_true")
    ap.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    ap.add_argument("--lr", type=float)
    ap.add_argument("--epochs", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.infer:
        return infer(a)
    if a.ddp_mpi:
        import os
        a.ddp = int(os.environ["OMPI_COMM_WORLD_SIZE"])
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # emulated nodes' host names do not resolve
        return ddp_worker(int(os.environ["OMPI_COMM_WORLD_RANK"]), a, None)
    if a.ddp:
        import torch.multiprocessing as mp
        times = mp.get_context("spawn").Queue()
        mp.spawn(ddp_worker, args=(a, times), nprocs=a.ddp, join=True)
        t = max(times.get() for _ in range(a.ddp))
        return print(f"torch ddp train_ips={a.train / t:.1f}")
    torch.manual_seed(1)
    x = torch.from_numpy(idx(D + "train-images-idx3-ubyte.gz").copy()).unsqueeze(1)  # uint8 (N,1,28,28)
    y = torch.from_numpy(idx(D + "train-labels-idx1-ubyte.gz").astype(np.int64))
    xt = torch.from_numpy(idx(D + "t10k-images-idx3-ubyte.gz").copy()).unsqueeze(1)
    mean, std = (x[:a.train].float() / 255).mean(), (x[:a.train].float() / 255).std()
    norm = lambda u: (u.float() / 255 - mean) / std  # the same per-batch conversion ranksweep does

    m = model(a.kind)
    if a.optimizer == "adam":
        opt = torch.optim.Adam(m.parameters(), lr=a.lr or 1e-4, betas=(0.9, 0.999), eps=1e-8)
    else:
        opt = torch.optim.SGD(m.parameters(), lr=a.lr or 0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    m.train()
    for epoch in range(a.epochs):
        perm = torch.randperm(a.train)
        t_opt = 0.0
        t0 = time.perf_counter()
        for s in range(0, a.train, a.batch):
            i = perm[s:s + a.batch]
            opt.zero_grad(set_to_none=True)
            loss_fn(m(norm(x[i])), y[i]).backward()
            t1 = time.perf_counter()
            opt.step()
            t_opt += time.perf_counter() - t1
        ips = a.train / (time.perf_counter() - t0)
        if epoch == 0:
            train_ips = ips
        if a.epochs > 1:
            print(f"torch epoch={epoch + 1} train_ips={ips:.1f} optimizer_s={t_opt:.2f}", flush=True)

    m.eval()
    ev = torch.cat([x[a.train:], xt])
    t0 = time.perf_counter()
    with torch.no_grad():
        for s in range(0, len(ev), a.eval_batch):
            m(norm(ev[s:s + a.eval_batch])).argmax(1)
    eval_ips = len(ev) / (time.perf_counter() - t0)
    print(f"torch train_ips={train_ips:.1f} eval_ips={eval_ips:.1f}")


def ddp_worker(rank, a, times):
    import os
    import torch.distributed as dist
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29517")
    torch.set_num_threads(a.threads)
    dist.init_process_group("gloo", rank=rank, world_size=a.ddp)
    torch.manual_seed(1)
    x = torch.from_numpy(idx(D + "train-images-idx3-ubyte.gz").copy()).unsqueeze(1)
    y = torch.from_numpy(idx(D + "train-labels-idx1-ubyte.gz").astype(np.int64))
    mean, std = (x[:a.train].float() / 255).mean(), (x[:a.train].float() / 255).std()
    m = torch.nn.parallel.DistributedDataParallel(model(a.kind))
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    perm = torch.randperm(a.train)  # the same on every process (same seed)
    lo, hi = a.batch * rank // a.ddp, a.batch * (rank + 1) // a.ddp  # this process's share of a batch
    m.train()
    dist.barrier()
    t0 = time.perf_counter()
    for s in range(0, a.train, a.batch):
        i = perm[s:s + a.batch][lo:hi]
        opt.zero_grad(set_to_none=True)
        loss_fn(m((x[i].float() / 255 - mean) / std), y[i]).backward()
        opt.step()
    dist.barrier()
    t = time.perf_counter() - t0
    if times is not None:
        times.put(t)
    else:  # --ddp-mpi: the slowest process's time, printed by rank 0
        t = torch.tensor([t], dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        if rank == 0:
            print(f"torch ddp train_ips={a.train / t.item():.1f}", flush=True)
    dist.destroy_process_group()


def infer(a):
    import h5py
    m = model(a.kind).eval()
    mean, std = 0.2860, 0.3530  # Fashion-MNIST's; the values do not change the timing
    t0 = time.perf_counter()
    xt = torch.from_numpy(idx(D + "t10k-images-idx3-ubyte.gz").copy()).unsqueeze(1)
    labels, probs = [], []
    with torch.no_grad():
        for s in range(0, len(xt), a.eval_batch):
            p = torch.softmax(m((xt[s:s + a.eval_batch].float() / 255 - mean) / std), 1)
            v, i = p.topk(5, 1)
            labels.append(i.int()), probs.append(v)
    with h5py.File(a.infer, "w") as f:
        f["labels"] = torch.cat(labels).numpy()
        f["probabilities"] = torch.cat(probs).numpy()
        f["index"] = np.arange(len(xt), dtype=np.int64)
    print(f"torch infer_ips={len(xt) / (time.perf_counter() - t0):.1f}")


if __name__ == "__main__":
    main()
