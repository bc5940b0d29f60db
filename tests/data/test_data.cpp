// Readers on small files the tests write, including malformed ones: each
// must throw UserError naming the file and the problem, and never crash.
#include <catch2/catch.hpp>

#include <set>

#include "backend/backend.h"
#include "data/cifar10.h"
#include "data/dataset.h"
#include "data/hdf5.h"
#include "data/idx.h"
#include "error.h"
#include "helpers.h"
#include "io/h5.h"

using namespace rs;
using namespace rs::test;
using Catch::Matchers::Contains;

namespace {

std::vector<uint8_t> seq(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t(i * 7);
  return v;
}

void write_h5(const std::string& path, const std::vector<hsize_t>& idims, bool as_float,
              const std::vector<hsize_t>& ldims, int label_value = 1) {
  H5 f = h5_create(path);
  size_t n = 1;
  for (hsize_t d : idims) n *= d;
  if (as_float) {
    std::vector<float> v(n, 0.5f);
    h5_write(f, "/images", v.data(), idims);
  } else {
    std::vector<uint8_t> v = seq(n);
    h5_write(f, "/images", v.data(), idims);
  }
  std::vector<int32_t> l(ldims.empty() ? 0 : ldims[0], label_value);
  if (!ldims.empty()) h5_write(f, "/labels", l.data(), ldims);
}

}  // namespace

TEST_CASE("IDX: raw and gzip, any image size", "[data]") {
  TempDir d("idx_ok");
  for (const char* ext : {"", ".gz"}) {
    const std::string im = d / (std::string("im") + ext), lb = d / (std::string("lb") + ext);
    write_bytes(im, idx_bytes(8, {3, 8, 5}, seq(3 * 8 * 5)));
    write_bytes(lb, idx_bytes(8, {3}, {0, 2, 1}));
    const Dataset ds = read_idx(im, lb, 3);
    CHECK(ds.n == 3);
    CHECK(ds.c == 1);
    CHECK(ds.h == 8);
    CHECK(ds.w == 5);
    CHECK(ds.u8 == seq(120));
    CHECK(ds.labels == std::vector<int32_t>{0, 2, 1});
  }
}

TEST_CASE("IDX: malformed files are one clear error each", "[data]") {
  TempDir d("idx_bad");
  const std::string lb = d / "labels";
  write_bytes(lb, idx_bytes(8, {2}, {0, 1}));
  const std::string im = d / "images";
  auto images = [&](const std::vector<uint8_t>& b) {
    write_bytes(im, b);
    return im;
  };
  struct Case {
    const char* what;
    std::vector<uint8_t> bytes;
    const char* expect;
  };
  const std::vector<Case> cases{
      {"bad magic", {1, 2, 8, 3, 0, 0, 0, 0}, "bad magic"},
      {"wrong dtype", idx_bytes(0x0D, {2, 2, 2}, std::vector<uint8_t>(32)), "not unsigned byte"},
      {"truncated payload", idx_bytes(8, {2, 4, 4}, seq(20)), "truncated"},
      {"truncated header", {0, 0, 8, 3, 0, 0}, "truncated header"},
      {"trailing bytes", idx_bytes(8, {2, 2, 2}, seq(9)), "trailing bytes"},
      {"dims that overflow", idx_bytes(8, {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, seq(16)), "truncated"},
      {"zero-sized image", idx_bytes(8, {2, 0, 4}, {}), "dimension"},
      {"empty file", {}, "empty file"},
      {"2-D images", idx_bytes(8, {2, 4}, seq(8)), "dimensions"},
  };
  for (const Case& c : cases) {
    DYNAMIC_SECTION(c.what) {
      REQUIRE_THROWS_AS(read_idx(images(c.bytes), lb, 10), UserError);
      REQUIRE_THROWS_WITH(read_idx(images(c.bytes), lb, 10), Contains(im) && Contains(c.expect));
    }
  }
}

TEST_CASE("IDX: label problems and compression problems", "[data]") {
  TempDir d("idx_labels");
  const std::string im = d / "images", lb = d / "labels";
  write_bytes(im, idx_bytes(8, {3, 2, 2}, seq(12)));
  SECTION("label count differs from image count") {
    write_bytes(lb, idx_bytes(8, {2}, {0, 1}));
    REQUIRE_THROWS_WITH(read_idx(im, lb, 10), Contains(lb) && Contains("2 labels for 3 images"));
  }
  SECTION("label >= classes") {
    write_bytes(lb, idx_bytes(8, {3}, {0, 10, 1}));
    REQUIRE_THROWS_WITH(read_idx(im, lb, 10), Contains(lb) && Contains("label 10 of sample 1"));
  }
  SECTION("not gzip but named .gz") {
    const std::string gz = d / "plain.gz";
    write_bytes(d / "plain", idx_bytes(8, {3, 2, 2}, seq(12)));
    std::filesystem::rename(d / "plain", gz);
    write_bytes(lb, idx_bytes(8, {3}, {0, 1, 2}));
    REQUIRE_THROWS_WITH(read_idx(gz, lb, 10), Contains(gz) && Contains("not gzip"));
  }
  SECTION("truncated gzip stream") {
    const std::string gz = d / "cut.gz";
    write_bytes(gz, idx_bytes(8, {3, 20, 20}, seq(1200)));
    const auto size = std::filesystem::file_size(gz);
    std::filesystem::resize_file(gz, size - 10);
    write_bytes(lb, idx_bytes(8, {3}, {0, 1, 2}));
    REQUIRE_THROWS_WITH(read_idx(gz, lb, 10), Contains(gz) && Contains("gzip"));
  }
  SECTION("a 42-byte gzip file whose header and trailer declare 8.6 GB (found by fuzzing)") {
    // Before: 8.6 GB allocated (and zeroed) before the stream ran out.
    const std::string gz = d / "forged";  // gzip data (found by content), written as is
    write_bytes(gz, {0x1f, 0x8b, 0x08, 0x00, 0x9f, 0x6c, 0x0d, 0x6b, 0x02, 0xff, 0x01, 0x40, 0x09, 0xbf,
                     0xf6, 0x00, 0x00, 0x08, 0x03, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x03, 0x00,
                     0x00, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1c, 0x10, 0x00, 0x00, 0x00});
    write_bytes(lb, idx_bytes(8, {3}, {0, 1, 2}));
    REQUIRE_THROWS_WITH(read_idx(gz, lb, 10), Contains(gz) && Contains("more than 42 bytes of gzip data can hold"));
  }
  SECTION("missing file") {
    REQUIRE_THROWS_WITH(read_idx(d / "nope", lb, 10), Contains(d / "nope") && Contains("not found"));
  }
  SECTION("a directory") { REQUIRE_THROWS_WITH(read_idx(d.path.string(), lb, 10), Contains("not a regular file")); }
}

TEST_CASE("CIFAR-10 binary batches", "[data]") {
  TempDir d("cifar");
  std::vector<uint8_t> rec;
  for (int r = 0; r < 3; ++r) {
    rec.push_back(uint8_t(r * 3));
    const auto px = seq(3072);
    rec.insert(rec.end(), px.begin(), px.end());
  }
  write_bytes(d / "data_batch_1.bin", rec);
  write_bytes(d / "data_batch_2.bin", std::vector<uint8_t>(rec.begin(), rec.begin() + 3073));
  write_bytes(d / "test_batch.bin", rec);
  const Dataset tr = read_cifar10(d.path.string(), true, 10);
  CHECK(tr.n == 4);
  CHECK((tr.c == 3 && tr.h == 32 && tr.w == 32));
  CHECK(tr.labels == std::vector<int32_t>{0, 3, 6, 0});
  CHECK(read_cifar10(d.path.string(), false, 10).n == 3);
  write_bytes(d / "data_batch_3.bin", std::vector<uint8_t>(rec.begin(), rec.begin() + 3000));
  REQUIRE_THROWS_WITH(read_cifar10(d.path.string(), true, 10), Contains("data_batch_3.bin") && Contains("multiple of"));
  REQUIRE_THROWS_WITH(read_cifar10(d / "none", true, 10), Contains("not found"));
}

TEST_CASE("HDF5 datasets: uint8 and float32, NCHW and NHW, and malformed ones", "[data]") {
  TempDir d("h5");
  h5_quiet();
  write_h5(d / "a.h5", {4, 3, 5, 6}, false, {4});
  const Dataset a = read_hdf5(d / "a.h5", 10);
  CHECK((a.n == 4 && a.c == 3 && a.h == 5 && a.w == 6 && a.is_u8()));
  CHECK(a.u8 == seq(4 * 3 * 5 * 6));
  write_h5(d / "b.h5", {2, 7, 7}, true, {2});
  const Dataset b = read_hdf5(d / "b.h5", 10);
  CHECK((b.n == 2 && b.c == 1 && b.h == 7 && !b.is_u8() && b.f32[0] == 0.5f));

  write_h5(d / "c.h5", {3, 7, 7}, true, {2});
  REQUIRE_THROWS_WITH(read_hdf5(d / "c.h5", 10), Contains("2 labels for 3 images"));
  write_h5(d / "e.h5", {3, 7, 7}, true, {});
  REQUIRE_THROWS_WITH(read_hdf5(d / "e.h5", 10), Contains("no dataset /labels"));
  write_h5(d / "f.h5", {3, 7, 7}, false, {3}, 12);
  REQUIRE_THROWS_WITH(read_hdf5(d / "f.h5", 10), Contains("label 12"));
  {
    H5 f = h5_create(d / "g.h5");
    std::vector<double> v(8);
    h5_write(f, "/images", v.data(), {2, 2, 2});
    std::vector<int32_t> l(2, 0);
    h5_write(f, "/labels", l.data(), {2});
  }
  REQUIRE_THROWS_WITH(read_hdf5(d / "g.h5", 10), Contains("uint8 or float32"));
  {  // labels of a 16-byte integer type (a damaged file's may claim gigabytes: HDF5 would allocate them to convert)
    H5 f = h5_create(d / "i.h5");
    std::vector<uint8_t> v(2 * 7 * 7), l(2 * 16, 0);
    h5_write(f, "/images", v.data(), {2, 7, 7});
    H5 t(H5Tcopy(H5T_STD_I64LE), H5Tclose);
    H5Tset_size(t, 16);
    const hsize_t n = 2;
    H5 sp(H5Screate_simple(1, &n, nullptr), H5Sclose);
    H5 ds(H5Dcreate2(f, "/labels", t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
    REQUIRE(H5Dwrite(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, l.data()) >= 0);
  }
  REQUIRE_THROWS_WITH(read_hdf5(d / "i.h5", 10), Contains("/labels must be integers of 1 to 8 bytes"));
  write_bytes(d / "h.h5", seq(100));
  REQUIRE_THROWS_WITH(read_hdf5(d / "h.h5", 10), Contains(d / "h.h5") && Contains("not an HDF5 file"));
}

TEST_CASE("split, permutation and normalisation", "[data]") {
  const auto p = permutation(1000, 42);
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) REQUIRE(sorted[i] == i);
  CHECK(p == permutation(1000, 42));
  CHECK(p != permutation(1000, 43));

  TempDir d("split");
  DataConfig cfg;
  std::vector<uint8_t> im, lb;
  toy_data(50, 4, 4, 3, 1, im, lb);
  write_bytes(d / "im", idx_bytes(8, {50, 4, 4}, im));
  write_bytes(d / "lb", idx_bytes(8, {50}, lb));
  cfg.train_images = d / "im", cfg.train_labels = d / "lb", cfg.test_images = "", cfg.test_labels = "";
  cfg.validation = 10, cfg.classes = 3;
  const Data data = load_data(cfg, 7);
  CHECK(data.train_idx.size() == 40);
  CHECK(data.val_idx.size() == 10);
  std::vector<int64_t> all = data.train_idx;
  all.insert(all.end(), data.val_idx.begin(), data.val_idx.end());
  std::sort(all.begin(), all.end());
  CHECK(std::adjacent_find(all.begin(), all.end()) == all.end());  // disjoint
  CHECK(load_data(cfg, 7).val_idx == data.val_idx);                // seeded
  CHECK(load_data(cfg, 8).val_idx != data.val_idx);
  // mean/std of the training split, after scaling to [0, 1]
  double s = 0, s2 = 0;
  for (int64_t i : data.train_idx)
    for (int k = 0; k < 16; ++k) {
      const double x = im[size_t(i) * 16 + k] / 255.0;
      s += x, s2 += x * x;
    }
  const double m = s / 640, sd = std::sqrt(s2 / 640 - m * m);
  CHECK(data.mean[0] == Approx(m).epsilon(1e-5));
  CHECK(data.inv_std[0] == Approx(1 / sd).epsilon(1e-4));
  cfg.validation = 50;
  REQUIRE_THROWS_WITH(load_data(cfg, 7), Contains("data.validation"));
}

TEST_CASE("augmentation: random crop with padding and flip, keyed by the sample's index and the epoch", "[data]") {
  const int N = 40, C = 2, H = 3, W = 4;
  std::vector<uint8_t> px(size_t(N) * C * H * W);
  for (size_t i = 0; i < px.size(); ++i) px[i] = uint8_t(1 + i % 250);  // no pixel is 0, the padding's value
  std::vector<int32_t> labels(N, 0);
  HostSamples d;
  d.u8 = px.data(), d.labels = labels.data(), d.c = C, d.h = H, d.w = W;
  const float mean[2] = {0.f, 0.f}, inv_std[2] = {255.f, 255.f};  // normalised = the pixel value
  auto be = make_cpu_backend();
  auto load = [&](const std::vector<int64_t>& idx, const Augment& a) {
    std::vector<float> x(idx.size() * C * H * W);
    std::vector<int32_t> lb(idx.size());
    be->load_batch(x.data(), lb.data(), d, idx.data(), int(idx.size()), mean, inv_std, a);
    return x;
  };
  std::vector<int64_t> all(N);
  for (int i = 0; i < N; ++i) all[size_t(i)] = i;
  const std::vector<float> plain = load(all, Augment{}), aug = load(all, Augment{2, true, 1234});
  CHECK(load(all, Augment{0, false, 1234}) == plain);  // off: the plain batch
  std::set<int> shifts;
  int flips = 0;
  for (int s = 0; s < N; ++s) {
    const AugmentDraw a = augment_draw(1234, uint64_t(s), 2, true);
    shifts.insert(a.dy), shifts.insert(a.dx);
    flips += a.flip;
    for (int c = 0; c < C; ++c)
      for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) {  // mirror first, then shift; outside the image: 0
          const int fx = a.flip ? W - 1 - x : x, sy = y + a.dy, sx = fx + a.dx;
          const bool in = sy >= 0 && sy < H && sx >= 0 && sx < W;
          const float want = in ? float(px[((size_t(s) * C + c) * H + sy) * W + sx]) : 0.f;
          CHECK(aug[((size_t(s) * C + c) * H + y) * W + x] == Approx(want));
        }
  }
  CHECK(shifts == std::set<int>{-2, -1, 0, 1, 2});
  CHECK(flips > 5);
  CHECK(flips < 35);
  // the same sample in another batch, at another position (another rank's slice): the same image
  const std::vector<float> two = load({7, 3}, Augment{2, true, 1234});
  const size_t per = size_t(C) * H * W;
  CHECK(std::vector<float>(two.begin(), two.begin() + long(per)) ==
        std::vector<float>(aug.begin() + long(7 * per), aug.begin() + long(8 * per)));
  CHECK(load(all, Augment{2, true, 1235}) != aug);  // another epoch, other draws
}
