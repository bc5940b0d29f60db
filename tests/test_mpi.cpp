// Run under mpiexec with 1, 2 and 3 ranks: data-parallel training over the
// world equals training on one rank with the same global batch, parameters
// are bitwise identical on every rank, and bad input seen by rank 0 alone
// ends every rank with the same error (no rank left in a collective).
#include <catch2/catch.hpp>

#include <fstream>

#include "dist/bcast_data.h"
#include "error.h"
#include "helpers.h"
#include "train/trainer.h"

using namespace rs;
using namespace rs::test;
using Catch::Matchers::Contains;

namespace {

// Rank 0 writes the data files (only rank 0 reads them) and shares the config.
std::string shared_config(const Comm& world, const TempDir* d, const std::string& body) {
  std::string text;
  if (world.leader()) text = toy_idx(*d, 300, 50, 8, 8, 3) + "validation = 50\n" + body;
  world.bcast_string(text);
  return text;
}

std::vector<float> train_params(const Config& cfg, const Comm& comm, int epochs) {
  auto be = make_cpu_backend();
  const Data data = load_and_bcast_data(comm, cfg.data, uint64_t(cfg.train.seed));
  Trainer tr(cfg, data, *be, comm);
  tr.init();
  for (int e = 0; e < epochs; ++e) tr.run_epoch();
  return tr.model().params_host();
}

}  // namespace

TEST_CASE("data-parallel training equals one rank with the same global batch", "[mpi]") {
  const Comm world(MPI_COMM_WORLD);
  std::unique_ptr<TempDir> d;
  if (world.leader()) d = std::make_unique<TempDir>("mpi_equal");
  // 25 does not divide by 2 or 3: uneven slices must be weighted correctly.
  const std::string text = shared_config(world, d.get(), R"([model]
layers = [ { type = "conv2d", out = 4, kernel = 3, padding = 1 }, { type = "relu" },
           { type = "maxpool", kernel = 2 }, { type = "flatten" }, { type = "dense", out = 16 },
           { type = "tanh" }, { type = "dropout", p = 0.3 }, { type = "dense", out = 3 } ]
[train]
batch_size = 25
lr = 0.05
)");
  const Config cfg = parse_config_text(text, "mpi.toml", {});
  const std::vector<float> p = train_params(cfg, world, 2);

  // Bitwise identical on every rank: compare with rank 0's copy.
  std::vector<float> p0 = p;
  world.bcast(std::span<float>(p0));
  int same = p0 == p, all_same = 0;
  MPI_Allreduce(&same, &all_same, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  CHECK(all_same == 1);

  // Against one rank: the same arithmetic except the order in which the
  // per-rank gradient partial sums are added (float rounding, ~1e-7 relative
  // per step), amplified over 2 epochs x 10 steps: 1e-4 absolute is generous
  // for weights of size ~0.1 yet far below any real disagreement (a wrong
  // slice or weight moves parameters by ~1e-2).
  if (world.leader()) {
    const std::vector<float> ref = train_params(cfg, Comm(MPI_COMM_SELF), 2);
    REQUIRE(ref.size() == p.size());
    double worst = 0;
    for (size_t i = 0; i < p.size(); ++i) worst = std::max(worst, double(std::abs(ref[i] - p[i])));
    INFO(world.size() << " ranks: largest parameter difference from 1 rank " << worst);
    CHECK(worst < 1e-4);
    if (world.size() == 1) CHECK(worst == 0);
  }
}

TEST_CASE("bad data seen by rank 0 ends every rank with the same error", "[mpi]") {
  const Comm world(MPI_COMM_WORLD);
  DataConfig cfg;
  cfg.train_images = "/nonexistent/train-images.gz";
  REQUIRE_THROWS_WITH(load_and_bcast_data(world, cfg, 1), Contains("/nonexistent/train-images.gz: file not found"));
  // and the world is still usable afterwards: nobody is stuck
  int one = 1, sum = 0;
  MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  CHECK(sum == world.size());
}
