#include "dist/bcast_data.h"

namespace rs {
namespace {

void bcast_dataset(const Comm& comm, Dataset& d) {
  int64_t hdr[5] = {d.n, d.c, d.h, d.w, d.is_u8() ? 1 : 0};
  comm.bcast(hdr);
  d.n = hdr[0], d.c = int(hdr[1]), d.h = int(hdr[2]), d.w = int(hdr[3]);
  comm.bcast_string(d.source);
  if (hdr[4])
    comm.bcast_vector(d.u8);
  else
    comm.bcast_vector(d.f32);
  comm.bcast_vector(d.labels);
}

}  // namespace

Data load_and_bcast_data(const Comm& comm, const DataConfig& cfg, uint64_t seed) {
  Data data;
  comm.root_only([&] { data = load_data(cfg, seed); });
  if (comm.size() == 1) return data;
  bcast_dataset(comm, data.train);
  bcast_dataset(comm, data.test);
  comm.bcast_vector(data.train_idx);
  comm.bcast_vector(data.val_idx);
  comm.bcast_vector(data.mean);
  comm.bcast_vector(data.inv_std);
  return data;
}

}  // namespace rs
