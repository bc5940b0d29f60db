#!/usr/bin/python3
"""Optuna + PyTorch peer for jobs/bench-sweep-vs-optuna.sh: the same grid of
tf-mnist-cnn trials (train.lr x train.batch_size) or MLP trials (train.lr x
the hidden layer's width, batch 64), 1 epoch, SGD momentum 0.9, validation
accuracy as the objective, on the same HDF5 data, run by WORKERS
processes sharing one Optuna study through a journal file (Optuna 3.1's
JournalStorage; GridSampler hands each grid point out once). One thread per
process. Prints `optuna trials=N points=P seconds=S` for the whole run, worker
start-up and imports included (as ranksweep's figure includes its own): N
trials run for P distinct grid points (N > P when two workers ran the same point).

usage: bench_optuna.py DATA.h5 --validation N --lr A,B,.. (--batch A,B,.. | --hidden A,B,..) --workers W
                       --journal FILE
"""
import argparse, multiprocessing as mp, time

T0 = time.perf_counter()


def worker(a):
    import h5py, numpy as np, optuna, torch
    import torch.nn as nn
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with h5py.File(a.data, "r") as f:
        x = torch.from_numpy(f["images"][()]).unsqueeze(1)
        y = torch.from_numpy(f["labels"][()].astype(np.int64))
    n = len(x) - a.validation
    g = torch.Generator().manual_seed(1)
    perm = torch.randperm(len(x), generator=g)
    tr, va = perm[:n], perm[n:]
    mean, std = (x[tr].float() / 255).mean(), (x[tr].float() / 255).std()
    norm = lambda u: (u.float() / 255 - mean) / std

    def objective(trial):
        lr = trial.suggest_float("lr", min(a.lr), max(a.lr))
        torch.manual_seed(trial.number)
        if a.hidden:  # the MLP: flatten, dense(width), ReLU, dense(10)
            batch = 64
            width = trial.suggest_int("hidden", min(a.hidden), max(a.hidden))
            m = nn.Sequential(nn.Flatten(), nn.Linear(784, width), nn.ReLU(), nn.Linear(width, 10))
        else:
            batch = trial.suggest_int("batch", min(a.batch), max(a.batch))
            m = nn.Sequential(nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                              nn.Linear(3136, 1024), nn.ReLU(), nn.Dropout(0.5), nn.Linear(1024, 10))
        opt = torch.optim.SGD(m.parameters(), lr=lr, momentum=0.9)
        loss_fn = nn.CrossEntropyLoss()
        m.train()
        order = tr[torch.randperm(n)]
        for s in range(0, n, batch):
            i = order[s:s + batch]
            opt.zero_grad(set_to_none=True)
            loss_fn(m(norm(x[i])), y[i]).backward()
            opt.step()
        m.eval()
        with torch.no_grad():
            correct = sum(int((m(norm(x[va[s:s + 256]])).argmax(1) == y[va[s:s + 256]]).sum())
                          for s in range(0, len(va), 256))
        return correct / len(va)

    storage = optuna.storages.JournalStorage(optuna.storages.JournalFileStorage(a.journal))
    grid = {"lr": a.lr, "hidden": a.hidden} if a.hidden else {"lr": a.lr, "batch": a.batch}
    sampler = optuna.samplers.GridSampler(grid)
    study = optuna.load_study(study_name="grid", storage=storage, sampler=sampler)
    study.optimize(objective, n_trials=len(a.lr) * len(a.hidden or a.batch))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--validation", type=int, required=True)
    ap.add_argument("--lr", type=lambda s: [float(v) for v in s.split(",")], required=True)
    ints = lambda s: [int(v) for v in s.split(",")]
    ap.add_argument("--batch", type=ints)
    ap.add_argument("--hidden", type=ints)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--journal", required=True)
    a = ap.parse_args()
    if bool(a.batch) == bool(a.hidden):
        ap.error("give --batch (the CNN) or --hidden (the MLP)")
    import optuna
    storage = optuna.storages.JournalStorage(optuna.storages.JournalFileStorage(a.journal))
    study = optuna.create_study(study_name="grid", storage=storage, direction="maximize")
    ps = [mp.get_context("spawn").Process(target=worker, args=(a,)) for _ in range(a.workers)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    done = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    # Two workers may both run the last free grid point (GridSampler's known
    # race): grid points done, not trials run, is what the user waited for.
    points = len({tuple(sorted(t.params.items())) for t in done})
    print(f"optuna trials={len(done)} points={points} seconds={time.perf_counter() - T0:.2f} "
          f"best={study.best_value:.4f}")


if __name__ == "__main__":
    main()
