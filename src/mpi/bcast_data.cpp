// Rank 0 reads the data; every node keeps ONE copy in an MPI-3 shared-memory
// window that its ranks read in place:
//   1. rank 0 loads and validates; sizes are broadcast to all ranks;
//   2. each node's leader allocates the window (the others attach to it);
//   3. rank 0 copies its arrays in and drops its private copy;
//   4. the node leaders broadcast the window among themselves (one
//      broadcast per node, not per rank), then each node synchronises.
// The window is freed (collectively on the node) when the last Dataset
// array that points into it goes.
#include "mpi/bcast_data.h"

#include <cstring>
#include <exception>
#include <stdexcept>

#include "io/trace.h"

namespace rs {
namespace {

struct Layout {
  int64_t n = 0, c = 0, h = 0, w = 0, u8 = 1;
  size_t pixel_bytes() const { return size_t(n) * size_t(c) * size_t(h) * size_t(w) * (u8 ? 1 : sizeof(float)); }
};

Layout layout_of(const Dataset& d) { return Layout{d.n, d.c, d.h, d.w, d.is_u8() ? 1 : 0}; }

size_t align64(size_t x) { return (x + 63) / 64 * 64; }

// The node communicator and the window; freed together, collectively.
struct NodeWindow {
  MPI_Comm node = MPI_COMM_NULL;
  MPI_Win win = MPI_WIN_NULL;
  char* base = nullptr;
  ~NodeWindow() {
    // Freeing is collective on the node: skip it while an exception unwinds
    // (a failing rank aborts the job; MPI_Finalize reclaims the window).
    if (std::uncaught_exceptions() > 0) return;
    if (win != MPI_WIN_NULL) MPI_Win_free(&win);
    if (node != MPI_COMM_NULL) MPI_Comm_free(&node);
  }
};

void point_into(Dataset& d, const Layout& l, char* p, const std::shared_ptr<NodeWindow>& owner) {
  d.n = l.n, d.c = int(l.c), d.h = int(l.h), d.w = int(l.w);
  const size_t count = size_t(l.n) * size_t(l.c) * size_t(l.h) * size_t(l.w);
  if (l.u8)
    d.u8 = Array<uint8_t>(reinterpret_cast<uint8_t*>(p), count, owner), d.f32 = Array<float>();
  else
    d.f32 = Array<float>(reinterpret_cast<float*>(p), count, owner), d.u8 = Array<uint8_t>();
  d.labels = Array<int32_t>(reinterpret_cast<int32_t*>(p + align64(l.pixel_bytes())), size_t(l.n), owner);
}

}  // namespace

Data load_and_bcast_data(const Comm& comm, const DataConfig& cfg, uint64_t seed) {
  const trace::Scope span("load and broadcast data");
  Data data;
  comm.root_only([&] {
    const trace::Scope read("read data");
    data = load_data(cfg, seed);
  });
  if (comm.size() == 1) return data;

  Layout l[2] = {layout_of(data.train), layout_of(data.test)};
  comm.bcast(l);
  comm.bcast_string(data.train.source);
  comm.bcast_string(data.test.source);
  comm.bcast_vector(data.train_idx);
  comm.bcast_vector(data.val_idx);
  comm.bcast_vector(data.mean);
  comm.bcast_vector(data.inv_std);
  std::string names;  // class names, one a line
  for (const std::string& n : data.class_names) names += n + "\n";
  comm.bcast_string(names);
  data.class_names.clear();
  for (size_t a = 0, b; (b = names.find('\n', a)) != std::string::npos; a = b + 1)
    data.class_names.push_back(names.substr(a, b - a));

  // one region: train pixels | train labels | test pixels | test labels, 64-byte aligned
  size_t off[2], total = 0;
  for (int k = 0; k < 2; ++k) {
    off[k] = total;
    total += align64(l[k].pixel_bytes()) + align64(size_t(l[k].n) * sizeof(int32_t));
  }

  auto win = std::make_shared<NodeWindow>();
  MPI_Comm_split_type(comm.raw(), MPI_COMM_TYPE_SHARED, comm.rank(), MPI_INFO_NULL, &win->node);
  int node_rank = 0;
  MPI_Comm_rank(win->node, &node_rank);
  void* base = nullptr;
  MPI_Win_allocate_shared(MPI_Aint(node_rank == 0 ? total : 0), 1, MPI_INFO_NULL, win->node, &base, &win->win);
  MPI_Aint size = 0;
  int disp = 0;
  MPI_Win_shared_query(win->win, 0, &size, &disp, &base);
  win->base = static_cast<char*>(base);

  if (comm.leader()) {  // copy in, then let the private copy go
    const Dataset* src[2] = {&data.train, &data.test};
    for (int k = 0; k < 2; ++k) {
      char* p = win->base + off[k];
      const Dataset& d = *src[k];
      if (l[k].n == 0) continue;
      if (l[k].u8)
        std::memcpy(p, d.u8.data(), l[k].pixel_bytes());
      else
        std::memcpy(p, d.f32.data(), l[k].pixel_bytes());
      std::memcpy(p + align64(l[k].pixel_bytes()), d.labels.data(), size_t(l[k].n) * sizeof(int32_t));
    }
  }
  MPI_Comm leaders;  // rank 0 of every node; world rank 0 is rank 0 here
  MPI_Comm_split(comm.raw(), node_rank == 0 ? 0 : MPI_UNDEFINED, comm.rank(), &leaders);
  if (leaders != MPI_COMM_NULL) {
    Comm(leaders).bcast(std::span<char>(win->base, total));
    MPI_Comm_free(&leaders);
  }
  MPI_Win_fence(0, win->win);  // the node's copy is complete and visible to all its ranks

  point_into(data.train, l[0], win->base + off[0], win);
  point_into(data.test, l[1], win->base + off[1], win);
  return data;
}

}  // namespace rs
