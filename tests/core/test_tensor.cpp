// Tensor core: factories, metadata, printing, dtype conversions (f16/bf16 rounding), views and
// storage sharing, in-place ops with NaN-poisoned destinations, the memory meter and devices.
#include <cstring>
#include <limits>

#include "core/core_util.hpp"

using namespace gradstyle;
using coretest::tens;
using coretest::vals;

namespace {

uint16_t bits16(const Tensor& t, int64_t i) {
  Tensor c = t.contiguous();
  uint16_t b;
  std::memcpy(&b, static_cast<const char*>(c.raw_data()) + 2 * i, 2);
  return b;
}

}  // namespace

TEST_CASE("core: factories give the documented values, shapes and dtypes") {
  Tensor z = Tensor::zeros({2, 3});
  CHECK(z.shape() == Shape{2, 3});
  CHECK(z.dtype() == DType::f32);
  CHECK(z.device() == Device::cpu());
  CHECK(vals(z) == std::vector<double>(6, 0.0));
  CHECK(vals(Tensor::ones({4}, {DType::f64})) == std::vector<double>(4, 1.0));
  CHECK(vals(Tensor::full({2, 2}, -2.5, {DType::f64})) == std::vector<double>(4, -2.5));
  Tensor s = Tensor::scalar(3.25);
  CHECK(s.dim() == 0);
  CHECK(s.numel() == 1);
  CHECK(s.item() == 3.25);
  CHECK(vals(Tensor::arange(5, {DType::i64})) == std::vector<double>{0, 1, 2, 3, 4});
  CHECK(Tensor::arange(5, {DType::i64}).dtype() == DType::i64);
  CHECK(vals(Tensor::linspace(-1, 1, 5, {DType::f64})) == std::vector<double>{-1, -0.5, 0, 0.5, 1});
  CHECK(vals(Tensor::linspace(2, 7, 1)) == std::vector<double>{2});
  CHECK(Tensor::arange(0).numel() == 0);
  Tensor e = Tensor::empty({3, 0, 2});
  CHECK(e.numel() == 0);
  CHECK(e.nbytes() == 0);
  CHECK(vals(Tensor::from_vector<int32_t>({7, -8}, {2}).to(DType::f64)) == std::vector<double>{7, -8});
  CHECK(vals(Tensor::from_vector<bool>({true, false, true}, {3})) == std::vector<double>{1, 0, 1});
}

TEST_CASE("core: factory argument errors are typed and named") {
  GS_CHECK_THROWS_WITH(Tensor::empty({2, -1}), ShapeError, "Tensor::empty", "[2,-1]");
  GS_CHECK_THROWS_WITH(Tensor::zeros({1, 1, 1, 1, 1, 1, 1, 1, 1}), ShapeError, "more than 8 dims");
  GS_CHECK_THROWS_WITH(Tensor::arange(-3), ValueError, "arange", "-3");
  GS_CHECK_THROWS_WITH(Tensor::linspace(0, 1, 0), ValueError, "linspace");
  GS_CHECK_THROWS_WITH(Tensor::from_vector<float>({1, 2, 3}, {2, 2}), ShapeError, "from_vector", "[2,2]");
  GS_CHECK_THROWS_WITH(Tensor::randn({2}, 1, {DType::i64}), DTypeError, "randn", "int64");
  GS_CHECK_THROWS_WITH(Tensor::rand({2}, 1, {DType::boolean}), DTypeError, "rand", "bool");
}

TEST_CASE("core: metadata accessors and their errors") {
  Tensor x = Tensor::zeros({2, 3, 4});
  CHECK(x.size(-1) == 4);
  CHECK(x.size(0) == 2);
  CHECK(x.strides() == Shape{12, 4, 1});
  CHECK(x.is_contiguous());
  CHECK_FALSE(x.permute({2, 0, 1}).is_contiguous());
  GS_CHECK_THROWS_WITH(x.size(3), IndexError, "Tensor::size", "dim 3");
  GS_CHECK_THROWS_WITH(x.size(-4), IndexError, "Tensor::size");
  GS_CHECK_THROWS_WITH(x.item(), ShapeError, "item", "[2,3,4]");
  GS_CHECK_THROWS_WITH(x.data<double>(), DTypeError, "float32", "float64");
  CHECK(x.data<float>() == x.raw_data());
  Tensor u;
  CHECK_FALSE(u.defined());
  GS_CHECK_THROWS_WITH(u.shape(), ValueError, "undefined");
  GS_CHECK_THROWS_WITH(add(u, x), ValueError, "add", "undefined");
}

TEST_CASE("core: printing shows shape, dtype, device, values and autograd state") {
  Tensor x = Tensor::from_vector<float>({1.5f, -2, 3, 4, 5, 6}, {2, 3});
  std::string s = x.str();
  CHECK(s.find("shape=[2,3]") != std::string::npos);
  CHECK(s.find("dtype=float32") != std::string::npos);
  CHECK(s.find("device=cpu") != std::string::npos);
  CHECK(s.find("[[1.5, -2, 3],\n [4, 5, 6]]") != std::string::npos);
  std::ostringstream os;
  os << x;
  CHECK(os.str() == s);

  Tensor big = Tensor::arange(100, {DType::i64});
  std::string b = big.str();
  CHECK(b.find("[0, 1, 2, ..., 97, 98, 99]") != std::string::npos);
  CHECK(b.find("dtype=int64") != std::string::npos);

  Tensor leaf = Tensor::ones({2}, {DType::f64}).requires_grad_();
  CHECK(leaf.str().find("requires_grad") != std::string::npos);
  Tensor y = leaf * leaf;
  CHECK(y.str().find("grad_fn=mul") != std::string::npos);
  CHECK(Tensor::scalar(2.5).str().find("\n2.5") != std::string::npos);
  CHECK(Tensor::zeros({0, 3}).str().find("shape=[0,3]") != std::string::npos);
  CHECK(Tensor().str() == "Tensor(undefined)");
}

TEST_CASE("core: dtype conversions round trip and truncate like C casts") {
  Tensor x = tens({0.1, -2.7, 2.7, 1e-3, 12345.678}, {5}, DType::f32);
  CHECK(vals(x.to(DType::f64).to(DType::f32)) == vals(x));
  CHECK(vals(x.to(DType::i64)) == std::vector<double>{0, -2, 2, 0, 12345});
  CHECK(vals(x.to(DType::i32)) == std::vector<double>{0, -2, 2, 0, 12345});
  CHECK(vals(tens({0, 0.5, -1, 0}, {4}).to(DType::boolean)) == std::vector<double>{0, 1, 1, 0});
  CHECK(vals(tens({1, 0}, {2}).to(DType::boolean).to(DType::f32)) == std::vector<double>{1, 0});
  CHECK(vals(tens({200, 3}, {2}).to(DType::u8)) == std::vector<double>{200, 3});
  // to() on a non-contiguous view converts the viewed elements in logical order.
  Tensor m = tens({1, 2, 3, 4, 5, 6}, {2, 3}).transpose(0, 1);
  CHECK(vals(m.to(DType::f32)) == std::vector<double>{1, 4, 2, 5, 3, 6});
  // A conversion to the same dtype is the same tensor.
  CHECK(x.to(DType::f32).same(x));
}

TEST_CASE("core: float16 conversion rounds to nearest even and handles specials") {
  const double u = std::ldexp(1.0, -10);  // half ulp spacing at 1
  Tensor x = tens({1.0, 1.0 + u / 2, 1.0 + 3 * u / 2, 65504.0, 65519.0, 65520.0, -0.0, std::ldexp(1.0, -24),
                   std::ldexp(1.0, -25), 1.5 * std::ldexp(1.0, -25), std::numeric_limits<double>::infinity(),
                   0.1},
                  {12}, DType::f32);
  Tensor h = x.to(DType::f16);
  CHECK(h.dtype() == DType::f16);
  CHECK(bits16(h, 0) == 0x3C00);
  CHECK(bits16(h, 1) == 0x3C00);  // tie between 1 (even) and 1+u (odd) -> 1
  CHECK(bits16(h, 2) == 0x3C02);  // tie between 1+u (odd) and 1+2u (even) -> 1+2u
  CHECK(bits16(h, 3) == 0x7BFF);  // largest finite half
  CHECK(bits16(h, 4) == 0x7BFF);  // just below the overflow tie
  CHECK(bits16(h, 5) == 0x7C00);  // tie to even overflows to inf
  CHECK(bits16(h, 6) == 0x8000);  // -0 keeps its sign
  CHECK(bits16(h, 7) == 0x0001);  // smallest subnormal
  CHECK(bits16(h, 8) == 0x0000);  // half of it ties to even zero
  CHECK(bits16(h, 9) == 0x0001);
  CHECK(bits16(h, 10) == 0x7C00);
  CHECK(bits16(h, 11) == 0x2E66);  // 0.1 -> 0.0999755859375
  auto back = vals(h.to(DType::f32));
  CHECK(back[2] == 1.0 + 2 * u);
  CHECK(back[11] == 0.0999755859375);
  Tensor nan = tens({std::nan("")}, {1}, DType::f32).to(DType::f16);
  CHECK((bits16(nan, 0) & 0x7C00) == 0x7C00);
  CHECK((bits16(nan, 0) & 0x03FF) != 0);
  CHECK(std::isnan(vals(nan)[0]));

  // Every non-NaN half survives half -> float32 -> half exactly.
  std::vector<uint16_t> all;
  for (uint32_t b = 0; b < 65536; ++b)
    if (!(((b & 0x7C00) == 0x7C00) && (b & 0x3FF))) all.push_back(uint16_t(b));
  Tensor hall = Tensor::from_blob(all.data(), {int64_t(all.size())}, DType::f16);
  Tensor again = hall.to(DType::f32).to(DType::f16);
  CHECK(std::memcmp(again.raw_data(), all.data(), all.size() * 2) == 0);
}

TEST_CASE("core: bfloat16 conversion rounds to nearest even") {
  const double u = std::ldexp(1.0, -7);
  Tensor x = tens({1.0, 1.0 + u / 2, 1.0 + 3 * u / 2, -3.0, 3.0e38, std::nan("")}, {6}, DType::f32);
  Tensor b = x.to(DType::bf16);
  CHECK(bits16(b, 0) == 0x3F80);
  CHECK(bits16(b, 1) == 0x3F80);
  CHECK(bits16(b, 2) == 0x3F82);
  CHECK(bits16(b, 3) == 0xC040);
  auto back = vals(b.to(DType::f32));
  CHECK(back[2] == 1.0 + 2 * u);
  CHECK(std::abs(back[4] - 3.0e38) <= 3.0e38 * u);
  CHECK(std::isnan(back[5]));
}

TEST_CASE("core: Philox matches the Random123 known-answer vectors") {
  struct Kat {
    uint32_t ctr[4];
    uint32_t key[2];
    uint32_t want[4];
  };
  const Kat kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{~0u, ~0u, ~0u, ~0u}, {~0u, ~0u}, {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Kat& k : kats) {
    uint64_t lo = uint64_t(k.ctr[0]) | uint64_t(k.ctr[1]) << 32;
    uint64_t hi = uint64_t(k.ctr[2]) | uint64_t(k.ctr[3]) << 32;
    uint64_t key = uint64_t(k.key[0]) | uint64_t(k.key[1]) << 32;
    Philox4 r = philox4x32(lo, hi, key);
    for (int i = 0; i < 4; ++i) CHECK(r.v[i] == k.want[i]);
  }
}

TEST_CASE("core: randn/rand are reproducible per (seed, offset) and have the right moments") {
  CHECK(vals(Tensor::randn({64}, 7)) == vals(Tensor::randn({64}, 7)));
  CHECK(vals(Tensor::randn({64}, 7)) != vals(Tensor::randn({64}, 8)));
  // Successive draws from one generator continue the stream: two draws of 10 = one draw of 20.
  Generator g(99);
  Tensor a = Tensor::randn({10}, g), b = Tensor::randn({10}, g);
  CHECK(g.offset() == 20);
  auto whole = vals(Tensor::randn({20}, 99));
  auto va = vals(a), vb = vals(b);
  CHECK(std::vector<double>(whole.begin(), whole.begin() + 10) == va);
  CHECK(std::vector<double>(whole.begin() + 10, whole.end()) == vb);
  CHECK(va != vb);
  // Setting the offset reproduces a draw exactly; a different offset gives different numbers.
  Generator g2(99);
  g2.set_offset(10);
  CHECK(vals(Tensor::randn({10}, g2)) == vb);
  // float32 and float64 draws are the same numbers up to float rounding.
  auto d64 = vals(Tensor::randn({32}, 5, {DType::f64}));
  auto d32 = vals(Tensor::randn({32}, 5, {DType::f32}));
  for (size_t i = 0; i < d64.size(); ++i) CHECK(d32[i] == double(float(d64[i])));

  const int64_t n = 100000;
  auto z = vals(Tensor::randn({n}, 2024, {DType::f64}));
  double mean = 0, sq = 0, within1 = 0;
  for (double v : z) {
    mean += v;
    sq += v * v;
    within1 += std::abs(v) < 1.0;
  }
  mean /= double(n);
  double sd = std::sqrt(sq / double(n) - mean * mean);
  CHECK(std::abs(mean) < 0.015);        // ~4.7 standard errors
  CHECK(std::abs(sd - 1.0) < 0.011);    // ~5 standard errors
  CHECK(std::abs(within1 / double(n) - 0.6827) < 0.0075);
  auto r = vals(Tensor::rand({n}, 2025, {DType::f64}));
  double lo = 1, hi = 0, rm = 0;
  for (double v : r) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    rm += v;
  }
  CHECK(lo > 0.0);
  CHECK(hi <= 1.0);
  CHECK(lo < 1e-3);
  CHECK(hi > 1 - 1e-3);
  CHECK(std::abs(rm / double(n) - 0.5) < 0.005);
  // A non-contiguous destination is not needed by the API: randn always returns dense tensors.
  CHECK(Tensor::randn({3, 5}, 1).is_contiguous());
  // The same (seed, offset) gives the same numbers on CUDA: uniforms bit-exact, normals to float
  // rounding (sqrt/log/cos may differ in the last ulp).
  if (cuda_available()) {
    Generator gc(31), gh(31);
    gc.set_offset(5);
    gh.set_offset(5);
    GS_EXPECT_CLOSE(Tensor::randn({1000}, gc, {DType::f32, Device::cuda()}).cpu(), Tensor::randn({1000}, gh), 1e-6, 1e-6);
    CHECK(vals(Tensor::rand({1000}, 32, {DType::f64, Device::cuda()})) == vals(Tensor::rand({1000}, 32, {DType::f64})));
  } else {
    MESSAGE("CPU-vs-CUDA Philox comparison skipped: " << std::string(cuda_built() ? "no GPU present" : "built without CUDA"));
  }
}

TEST_CASE("core: reshape/view share storage when possible and copy when not") {
  Tensor x = tens({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor r = x.reshape({3, 2});
  CHECK(r.storage() == x.storage());
  CHECK(x.reshape({-1}).shape() == Shape{6});
  CHECK(x.view({3, -1}).shape() == Shape{3, 2});
  {
    autograd::NoGradGuard ng;
    r.fill_(7);  // writes through the view
  }
  CHECK(vals(x) == std::vector<double>(6, 7));

  Tensor y = tens({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor t = y.transpose(0, 1);  // [3,2], strides [1,3]
  CHECK(t.storage() == y.storage());
  Tensor flat = t.reshape({6});  // needs a copy
  CHECK(flat.storage() != y.storage());
  CHECK(vals(flat) == std::vector<double>{0, 3, 1, 4, 2, 5});
  GS_CHECK_THROWS_WITH(t.view({6}), ShapeError, "view", "[3,2]", "reshape");
  // Splitting a dim of a permuted tensor is still a view.
  Tensor p = Tensor::arange(24, {DType::f64}).reshape({2, 3, 4}).permute({2, 0, 1});  // [4,2,3]
  Tensor pv = p.view({4, 6});
  CHECK(pv.storage() == p.storage());
  CHECK(vals(pv) == vals(p.contiguous().view({4, 6})));
  // narrow / expand / unsqueeze are views with the expected geometry.
  Tensor n = y.narrow(1, 1, 2);
  CHECK(n.storage() == y.storage());
  CHECK(n.offset() == 1);
  CHECK(n.strides() == Shape{3, 1});
  Tensor e = tens({1, 2, 3}, {3}).expand({4, 3});
  CHECK(e.strides() == Shape{0, 1});
  CHECK(vals(e) == std::vector<double>{1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3});
  // contiguous() is the identity on dense tensors and a copy otherwise; clone() always copies.
  CHECK(y.contiguous().same(y));
  CHECK(t.contiguous().storage() != y.storage());
  CHECK(y.clone().storage() != y.storage());
  CHECK(vals(y.clone()) == vals(y));
  GS_CHECK_THROWS_WITH(x.reshape({4, 2}), ShapeError, "reshape", "[2,3]", "[4,2]");
  GS_CHECK_THROWS_WITH(x.reshape({-1, -1}), ShapeError, "only one -1");
}

TEST_CASE("core: copy_ and fill_ overwrite every element of a NaN-poisoned destination") {
  autograd::NoGradGuard ng;
  Tensor dst = gstest::poison(Tensor::empty({2, 3}, {DType::f64}));
  dst.copy_(tens({1, 2, 3}, {3}));  // broadcast over rows
  CHECK(vals(dst) == std::vector<double>{1, 2, 3, 1, 2, 3});
  // Into a non-contiguous view: only the viewed elements change.
  Tensor base = gstest::poison(Tensor::empty({3, 4}, {DType::f32}));
  Tensor tv = base.narrow(1, 1, 2).transpose(0, 1);  // [2,3] view of columns 1..2
  tv.copy_(tens({1, 2, 3, 4, 5, 6}, {2, 3}));          // float64 source converted to float32
  auto b = vals(base);
  CHECK(b[1] == 1);
  CHECK(b[5] == 2);
  CHECK(b[9] == 3);
  CHECK(b[2] == 4);
  CHECK(b[6] == 5);
  CHECK(b[10] == 6);
  for (int i : {0, 3, 4, 7, 8, 11}) CHECK(std::isnan(b[size_t(i)]));
  Tensor f = gstest::poison(Tensor::empty({2, 5}, {DType::f64}));
  f.narrow(1, 0, 5).fill_(4.5);
  CHECK(vals(f) == std::vector<double>(10, 4.5));
  Tensor ft = gstest::poison(Tensor::empty({4, 3}, {DType::f32})).transpose(0, 1);
  ft.fill_(-1);
  CHECK(vals(ft) == std::vector<double>(12, -1));
  // add_ and mul_ (on a strided view)
  Tensor a = tens({1, 2, 3, 4}, {2, 2});
  a.add_(tens({10, 20}, {2}), 0.5);
  CHECK(vals(a) == std::vector<double>{6, 12, 8, 14});
  a.transpose(0, 1).narrow(0, 0, 1).mul_(2);  // column 0
  CHECK(vals(a) == std::vector<double>{12, 12, 16, 14});
  GS_CHECK_THROWS_WITH(dst.copy_(tens({1, 2}, {2})), ShapeError, "copy_", "[2,3]");
  GS_CHECK_THROWS_WITH(dst.copy_(tens({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {2, 2, 3})), ShapeError, "copy_");
}

TEST_CASE("core: in-place ops refuse leaves that require grad unless grad mode is off") {
  Tensor w = Tensor::ones({3}, {DType::f64}).requires_grad_();
  GS_CHECK_THROWS_WITH(w.fill_(0), AutogradError, "fill_", "NoGradGuard");
  GS_CHECK_THROWS_WITH(w.copy_(Tensor::zeros({3}, {DType::f64})), AutogradError, "copy_");
  GS_CHECK_THROWS_WITH(w.add_(Tensor::zeros({3}, {DType::f64})), AutogradError, "add_");
  GS_CHECK_THROWS_WITH(w.mul_(2), AutogradError, "mul_");
  {
    autograd::NoGradGuard ng;
    w.add_(Tensor::ones({3}, {DType::f64}), -0.5);  // an optimizer step
  }
  CHECK(vals(w) == std::vector<double>{0.5, 0.5, 0.5});
  CHECK(w.requires_grad());
}

TEST_CASE("core: the memory meter returns to its start when tensors and graphs are freed") {
  const int64_t start = memory_stats(DeviceType::CPU).current_bytes;
  {
    Tensor a = Tensor::empty({1000}, {DType::f64});
    CHECK(memory_stats(DeviceType::CPU).current_bytes == start + 8000);
    Tensor v = a.reshape({10, 100});  // a view allocates nothing
    CHECK(v.storage() == a.storage());
    CHECK(memory_stats(DeviceType::CPU).current_bytes == start + 8000);
    CHECK(memory_stats(DeviceType::CPU).peak_bytes >= start + 8000);
  }
  CHECK(memory_stats(DeviceType::CPU).current_bytes == start);
  {
    // A graph that is never run, one that is run, and one built with create_graph: all of their
    // saved tensors must be released (a reference cycle through a node would leak here).
    Tensor x = Tensor::randn({4, 5}, 3, {DType::f64}).requires_grad_();
    Tensor w = Tensor::randn({5, 3}, 4, {DType::f64}).requires_grad_();
    Tensor h = softmax(tanh(matmul(x, w)), 1);
    Tensor y = amax(h, {1}, true) + amin(h, {0}, true).sum() + var(h, {0}).sum() + log_softmax(h, 0).mean();
    Tensor unused = sigmoid(x).sum() + cat({x, x}, 0).sum() + index_select(x, 0, Tensor::arange(2, {DType::i64})).sum() +
                    amax(x, {0}, true).sum() + amin(x, {}, true).sum();
    y.sum().backward();
    auto g = autograd::grad({(x * x * x).sum()}, {x}, {}, false, true);
    g[0].sum().backward();
  }
  CHECK(memory_stats(DeviceType::CPU).current_bytes == start);
  reset_peak_memory(DeviceType::CPU);
  CHECK(memory_stats(DeviceType::CPU).peak_bytes == start);
}

TEST_CASE("core: devices parse, print and refuse CUDA without CUDA") {
  CHECK(Device::parse("cpu") == Device::cpu());
  CHECK(Device::parse("cuda") == Device::cuda(0));
  CHECK(Device::parse("cuda:1") == Device::cuda(1));
  CHECK(Device::cuda(2).str() == "cuda:2");
  CHECK(Device::cpu().str() == "cpu");
  GS_CHECK_THROWS_WITH(Device::parse("gpu"), ValueError, "gpu", "expected cpu, cuda or cuda:N");
  GS_CHECK_THROWS_WITH(Device::parse("cuda:x"), ValueError, "cuda:x");
  if (!cuda_built()) {
    CHECK_FALSE(cuda_available());
    GS_CHECK_THROWS_WITH(Tensor::zeros({2}, {DType::f32, Device::cuda()}), DeviceError, "built without CUDA",
                         "-Dcuda=enabled");
    GS_CHECK_THROWS_WITH(Tensor::ones({2}).to(Device::cuda()), DeviceError, "built without CUDA");
    GS_CHECK_THROWS_WITH(Tensor::randn({2}, 1, {DType::f32, Device::cuda()}), DeviceError, "built without CUDA");
  } else if (!cuda_available()) {
    CHECK_THROWS_AS(Tensor::zeros({2}, {DType::f32, Device::cuda()}), gradstyle::Error);
    MESSAGE("CUDA built but no GPU present: mixed-device checks skipped");
  } else {
    Tensor a = Tensor::ones({2, 3}), b = Tensor::ones({2, 3}, {DType::f32, Device::cuda()});
    GS_CHECK_THROWS_WITH(add(a, b), DeviceError, "add", "device mismatch", "cpu", "cuda:0", "[2,3]");
    GS_CHECK_THROWS_WITH(matmul(a, b.transpose(0, 1)), DeviceError, "matmul", "device mismatch");
    GS_CHECK_THROWS_WITH(where(gt(a, a), b, b), DeviceError, "where");
    GS_CHECK_THROWS_WITH(cat({a, b}, 0), DeviceError, "cat");
    GS_CHECK_THROWS_WITH(mse_loss(a, b), DeviceError, "mse_loss");
    CHECK(vals(b.to(Device::cpu())) == std::vector<double>(6, 1.0));
  }
}
