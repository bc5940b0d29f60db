// Device choice with the devices injected (what each local rank of a node
// sees, as PCI bus ids): runs on any machine.
#include <catch2/catch.hpp>

#include <set>

#include "backend/device.h"
#include "error.h"

using namespace rs;
using Catch::Matchers::Contains;

namespace {

using NodeView = std::vector<std::vector<std::string>>;

// `ranks` ranks on a node, each seeing the same `visible` devices.
NodeView shared(int ranks, int visible) {
  std::vector<std::string> d;
  for (int i = 0; i < visible; ++i) d.push_back("0000:" + std::to_string(10 + i) + ":00.0");
  return NodeView(size_t(ranks), d);
}

}  // namespace

TEST_CASE("device choice: cpu, auto and cuda with injected devices", "[device]") {
  CHECK(!choose_device("cpu", true, shared(1, 8), 0).cuda);
  const DeviceChoice none = choose_device("auto", true, shared(1, 0), 0);
  CHECK(!none.cuda);
  CHECK_THAT(none.why, Contains("no CUDA device visible"));
  CHECK_THAT(choose_device("auto", false, shared(1, 4), 0).why, Contains("no CUDA backend in this build"));
  // ranks on a node take the visible devices by local rank
  for (int r = 0; r < 4; ++r) {
    const DeviceChoice d = choose_device("auto", true, shared(4, 4), r);
    CHECK(d.cuda);
    CHECK(d.device == r);
    CHECK(d.pci == "0000:" + std::to_string(10 + r) + ":00.0");
  }
  CHECK(choose_device("cuda", true, shared(2, 8), 1).device == 1);
  REQUIRE_THROWS_WITH(choose_device("cuda", false, shared(1, 4), 0), Contains("this build has no CUDA backend"));
  REQUIRE_THROWS_WITH(choose_device("cuda", true, shared(1, 0), 0), Contains("no CUDA device is visible"));
  REQUIRE_THROWS_WITH(choose_device("cuda", true, shared(3, 2), 2),
                      Contains("3 ranks on this node but 2 visible GPUs"));
}

TEST_CASE("device choice: a rank that sees one GPU uses it; ranks never share one", "[device]") {
  // Slurm --gpus-per-task=1 / --gpu-bind, or a site wrapper: each rank sees its own single GPU
  const NodeView bound = {{"0000:17:00.0"}, {"0000:65:00.0"}, {"0000:ca:00.0"}, {"0000:e3:00.0"}};
  for (int r = 0; r < 4; ++r) {
    const DeviceChoice d = choose_device("auto", true, bound, r);
    CHECK(d.cuda);
    CHECK(d.device == 0);
    CHECK(d.pci == bound[size_t(r)][0]);
    CHECK_THAT(d.why, Contains("the one GPU this rank sees"));
  }
  // every rank sees the same single GPU: more ranks than GPUs, on every rank of the node
  for (int r = 0; r < 2; ++r)
    REQUIRE_THROWS_WITH(choose_device("auto", true, shared(2, 1), r),
                        Contains("2 ranks on this node but 1 distinct GPU"));
  // two ranks bound to the same GPU, one to another: still two on one
  const NodeView clash = {{"0000:17:00.0"}, {"0000:17:00.0"}, {"0000:65:00.0"}};
  REQUIRE_THROWS_WITH(choose_device("cuda", true, clash, 2), Contains("3 ranks on this node but 2 distinct GPUs"));
  // more ranks than GPUs: every rank of the node fails, not only the ones without a GPU
  for (int r : {0, 4})
    REQUIRE_THROWS_WITH(choose_device("auto", true, shared(5, 4), r), Contains("5 ranks on this node but 4 visible"));
}

TEST_CASE("device choice: a 4-rank sweep of single-rank groups takes 4 different GPUs", "[device]") {
  // The placement is the whole job's node (local ranks 0..3), not each group (where every rank is local rank 0).
  std::set<int> taken;
  for (int r = 0; r < 4; ++r) taken.insert(choose_device("auto", true, shared(4, 4), r).device);
  CHECK(taken == std::set<int>{0, 1, 2, 3});
  std::set<int> per_group;  // what placing by group would give: one rank per "node view", each local rank 0
  for (int r = 0; r < 4; ++r) per_group.insert(choose_device("auto", true, shared(1, 4), 0).device);
  CHECK(per_group == std::set<int>{0});
}
