// Device choice with the device count injected: runs on any machine.
#include <catch2/catch.hpp>

#include "backend/device.h"
#include "error.h"

using namespace rs;
using Catch::Matchers::Contains;

TEST_CASE("device choice: cpu, auto and cuda with injected device counts", "[device]") {
  CHECK(!choose_device("cpu", true, 8, 0, 1).cuda);
  const DeviceChoice none = choose_device("auto", true, 0, 0, 1);
  CHECK(!none.cuda);
  CHECK_THAT(none.why, Contains("no CUDA device visible"));
  CHECK_THAT(choose_device("auto", false, 4, 0, 1).why, Contains("no CUDA backend in this build"));
  // ranks on a node take the visible devices by local rank
  for (int r = 0; r < 4; ++r) {
    const DeviceChoice d = choose_device("auto", true, 4, r, 4);
    CHECK(d.cuda);
    CHECK(d.device == r);
  }
  CHECK(choose_device("cuda", true, 8, 1, 2).device == 1);
  REQUIRE_THROWS_WITH(choose_device("cuda", false, 4, 0, 1), Contains("this build has no CUDA backend"));
  REQUIRE_THROWS_WITH(choose_device("cuda", true, 0, 0, 1), Contains("no CUDA device is visible"));
  REQUIRE_THROWS_WITH(choose_device("cuda", true, 2, 2, 3), Contains("3 ranks on this node but 2 visible GPUs"));
  REQUIRE_THROWS_WITH(choose_device("auto", true, 1, 1, 2), Contains("2 ranks on this node but 1 visible GPU "));
}
