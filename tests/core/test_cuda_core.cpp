// CUDA backend of the basic op families (cuda/common, cuda/ops) against the CPU kernels: every
// kernel family on seeded inputs with awkward sizes (not multiples of the block size), strided and
// broadcast views, empty tensors; bit-exact conversions, fills and uniforms; the runtime (copies,
// memory meter, errors) and the whole autograd path of a small MLP.
//
// Each case skips VISIBLY (doctest MESSAGE) without a GPU, and the file compiles in CPU-only builds
// (only the public API and the backend dispatch, which never references CUDA there).
// Run on a GPU machine with: ./build-cuda/tests/gs_tests -tc='*cuda*'
#include <cstring>
#include <limits>

#include "backend/kernels.hpp"
#include "support/harness.hpp"

using namespace gradstyle;
using gstest::Tol;

namespace {

const Device kCuda = Device::cuda();

bool skip_without_cuda() {
  if (cuda_available()) return false;
  MESSAGE("CUDA case skipped: " << std::string(cuda_built() ? "no GPU present" : "built without CUDA"));
  return true;
}
#define GS_SKIP_WITHOUT_CUDA() \
  if (skip_without_cuda()) return

const DType kAllDTypes[] = {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i64,
                            DType::i32, DType::i16, DType::i8,  DType::u8,   DType::boolean};

std::vector<uint8_t> bytes_of(const Tensor& t) {
  Tensor c = t.detach().cpu().contiguous();
  std::vector<uint8_t> b(c.nbytes());
  if (!b.empty()) std::memcpy(b.data(), c.raw_data(), b.size());
  return b;
}

// Same dtype, shape and bytes (so NaN payloads and signed zeros count).
#define GS_CHECK_BITWISE(a, b)                                                  \
  do {                                                                          \
    Tensor _a = (a), _b = (b);                                                  \
    REQUIRE(_a.dtype() == _b.dtype());                                          \
    REQUIRE(_a.shape() == _b.shape());                                          \
    auto _ba = bytes_of(_a), _bb = bytes_of(_b);                                \
    size_t _first = 0;                                                          \
    while (_first < _ba.size() && _ba[_first] == _bb[_first]) ++_first;        \
    INFO("first differing byte " << _first << " of " << _ba.size());            \
    CHECK(_ba == _bb);                                                          \
  } while (0)

// doctest prints a const char* as a pointer: names go through std::string.
std::string dn(DType t) { return dtype_name(t); }

bool is_int(DType t) { return !is_floating(t) && t != DType::boolean; }
bool is_signed_int(DType t) { return t == DType::i64 || t == DType::i32 || t == DType::i16 || t == DType::i8; }

// Values every conversion src -> dst is defined for on the CPU (float -> integer conversion of
// out-of-range values, NaN included, is undefined behaviour in C++, so those are left out).
std::vector<double> conversion_values(DType src, DType dst) {
  std::vector<double> v = {0.0, 0.5, 1.0, 1.5, 2.5, 3.49, 7.75, 99.9, 100.0, 120.0, 127.0};
  if (dst != DType::u8 && src != DType::u8 && dst != DType::boolean && src != DType::boolean) {
    size_t n = v.size();
    for (size_t i = 0; i < n; ++i) v.push_back(-v[i]);
  }
  if (!is_int(src) && !is_int(dst)) {
    const double inf = std::numeric_limits<double>::infinity();
    for (double x : {-0.0, 0.1, 65504.0, 65519.0, 65520.0, 1e5, 1e30, -1e30, 5.96e-8, 2.98e-8, 3.0e-8, 1e-5,
                     1.00048828125, 1.000732421875, 3.0517578125e-05, 1e-40, inf, -inf,
                     std::numeric_limits<double>::quiet_NaN()})
      v.push_back(x);
  }
  return v;
}

// RAII: TF32 on/off for a scope.
struct Tf32Scope {
  bool prev = allow_tf32();
  explicit Tf32Scope(bool on) { set_allow_tf32(on); }
  ~Tf32Scope() { set_allow_tf32(prev); }
};

}  // namespace

// ---- runtime ----------------------------------------------------------------------------------

TEST_CASE("core/cuda: device queries never crash without a GPU") {
  bool avail = false;
  CHECK_NOTHROW(avail = cuda_available());
  if (!cuda_built()) CHECK_FALSE(avail);
  if (!avail) {
    MESSAGE("no usable GPU (" << std::string(cuda_built() ? "CUDA built" : "CUDA not built") << "): checking the errors");
    // A CUDA tensor must fail with a typed error, not crash.
    CHECK_THROWS_AS(Tensor::zeros({2, 3}, {DType::f32, kCuda}), gradstyle::Error);
    CHECK_THROWS_AS(Tensor::ones({4}).to(kCuda), gradstyle::Error);
  } else {
    Tensor t = Tensor::ones({4}).to(kCuda);
    CHECK(t.is_cuda());
  }
}

// Device ordinals: a tensor on cuda:N lives on GPU N (the dispatch and the storage make N current
// around every launch, allocation, free and copy); an ordinal without a GPU is a DeviceError that
// names it. Runs in every build: without a GPU every ordinal is missing.
TEST_CASE("core/cuda: device ordinals are honoured and a missing one is a DeviceError") {
  CHECK(Device::parse("cuda:3") == Device::cuda(3));
  CHECK(Device::parse("cuda:3").str() == "cuda:3");
  if (!cuda_built()) {
    GS_CHECK_THROWS_WITH(Tensor::zeros({2}, {DType::f32, Device::cuda(1)}), DeviceError, "built without CUDA");
    return;
  }
#if defined(GRADSTYLE_CUDA)
  const int n = cuda::device_count();
  MESSAGE(n << " CUDA device(s) visible");
  for (int ord : {n, n + 5}) {
    const Device d = Device::cuda(ord);
    const std::string name = d.str();
    GS_CHECK_THROWS_WITH(Tensor::zeros({2}, {DType::f32, d}), DeviceError, name.c_str(), "not available");
    GS_CHECK_THROWS_WITH(Tensor::ones({2}).to(d), DeviceError, name.c_str(), "not available");
  }
  if (n == 0) {
    GS_CHECK_THROWS_WITH(Tensor::zeros({2}, {DType::f32, kCuda}), DeviceError, "cuda:0", "no CUDA device is visible");
    return;
  }
  // the last GPU (cuda:0 on a one-GPU machine): values made there, worked on there, copied back
  const Device last = Device::cuda(n - 1);
  Tensor x = Tensor::randn({3, 5}, 7);
  Tensor a = x.to(last);
  CHECK(a.device() == last);
  Tensor b = (a * 2.0 + 1.0).sum({1});
  CHECK(b.device() == last);
  GS_EXPECT_CLOSE(b.cpu(), (x * 2.0 + 1.0).sum({1}), 1e-6, 1e-6);
  // across GPUs (or within one): a peer copy keeps the bits
  Tensor c = a.to(kCuda);
  CHECK(c.device() == kCuda);
  GS_EXPECT_CLOSE(c.cpu(), x, 0, 0);
  if (n < 2) MESSAGE("one GPU: the cross-device case ran as a same-device copy");
#endif
}

// The backend settings live in core (core/settings.hpp); ops/linalg.hpp re-exports them.
TEST_CASE("core/cuda: backend settings default to exact float32 and deterministic algorithms") {
  CHECK_FALSE(allow_tf32());
  CHECK(deterministic_algorithms());
  set_deterministic_algorithms(false);
  CHECK_FALSE(deterministic_algorithms());
  set_deterministic_algorithms(true);
  set_allow_tf32(true);
  CHECK(allow_tf32());
  set_allow_tf32(false);
  CHECK_FALSE(allow_tf32());
}

TEST_CASE("core/cuda: to(Device) round trip keeps every dtype bit-exact") {
  GS_SKIP_WITHOUT_CUDA();
  for (DType dt : kAllDTypes) {
    INFO("dtype " << dn(dt));
    for (Shape s : {Shape{3, 37}, Shape{257}, Shape{}, Shape{0, 5}, Shape{2, 0}}) {
      INFO("shape " << shape_str(s));
      const int64_t n = shape_numel(s);
      std::vector<uint8_t> raw(size_t(n) * dtype_size(dt));
      uint64_t st = 0x9E3779B97F4A7C15ull;
      for (auto& b : raw) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        b = uint8_t(st >> 56);
        if (dt == DType::boolean) b &= 1;
      }
      Tensor cpu = Tensor::from_blob(raw.data(), s, dt);
      Tensor gpu = cpu.to(kCuda);
      CHECK(gpu.is_cuda());
      CHECK(gpu.dtype() == dt);
      GS_CHECK_BITWISE(gpu.cpu(), cpu);
      // Upload straight from host memory, and a device-to-device clone.
      GS_CHECK_BITWISE(Tensor::from_blob(raw.data(), s, dt, kCuda).clone().cpu(), cpu);
    }
  }
  // A non-contiguous view is made dense on its device before the transfer.
  Tensor x = Tensor::randn({6, 9}, 3);
  GS_CHECK_BITWISE(x.to(kCuda).transpose(0, 1).cpu(), x.transpose(0, 1).contiguous());
  GS_CHECK_BITWISE(x.transpose(0, 1).to(kCuda).cpu(), x.transpose(0, 1).contiguous());
}

TEST_CASE("core/cuda: the memory meter returns to its start when tensors are freed") {
  GS_SKIP_WITHOUT_CUDA();
  const int64_t start = memory_stats(DeviceType::CUDA).current_bytes;
  reset_peak_memory(DeviceType::CUDA);
  {
    Tensor a = Tensor::randn({129, 65}, 1, {DType::f32, kCuda});
    Tensor b = Tensor::randn({65, 33}, 2, {DType::f32, kCuda}).requires_grad_();
    CHECK(memory_stats(DeviceType::CUDA).current_bytes == start + (129 * 65 + 65 * 33) * 4);
    Tensor loss = softmax(matmul(a, b), 1).sum() + Tensor::randn({70001}, 4, {DType::f32, kCuda}).sum();
    loss.backward();
    CHECK(b.grad().defined());
    CHECK(memory_stats(DeviceType::CUDA).peak_bytes > start + (129 * 65 + 65 * 33) * 4);
  }
  CHECK(memory_stats(DeviceType::CUDA).current_bytes == start);
}

TEST_CASE("core/cuda: errors are typed and leave the runtime usable") {
  GS_SKIP_WITHOUT_CUDA();
  // 256 TiB cannot be allocated: a CudaError naming the size, not a crash.
  GS_CHECK_THROWS_WITH(Tensor::empty({int64_t(1) << 48}, {DType::u8, kCuda}), CudaError, "allocating",
                       "281474976710656 bytes");
  // The failure must not poison the next launch check.
  Tensor y = Tensor::ones({1000}, {DType::f32, kCuda}) * 3.0;
  CHECK(y.sum().item() == doctest::Approx(3000.0));
  // Kernel-level dtype checks name the op and the device.
  Tensor i = Tensor::zeros({4}, {DType::i64, kCuda});
  GS_CHECK_THROWS_WITH(GS_DISPATCH(kCuda, unary, backend::UnaryOp::Exp, backend::make_view(i), backend::make_view(i),
                                   0.0, 0.0),
                       DTypeError, "unary op (cuda)", "int64");
  GS_CHECK_THROWS_WITH(matmul(Tensor::ones({2, 3}, {DType::f32, kCuda}), Tensor::ones({3, 2})), DeviceError,
                       "matmul", "device mismatch");
}

// ---- copy / fill / random ---------------------------------------------------------------------

TEST_CASE("core/cuda: converting copy matches the CPU bit for bit for every dtype pair") {
  GS_SKIP_WITHOUT_CUDA();
  for (DType src : kAllDTypes)
    for (DType dst : kAllDTypes) {
      INFO(dn(src) << " -> " << dn(dst));
      auto vals = conversion_values(src, dst);
      Tensor x = Tensor::from_vector(vals, {int64_t(vals.size())}).to(src);
      GS_CHECK_BITWISE(x.to(kCuda).to(dst).cpu(), x.to(dst));
      // strided source: a transposed [2, n/2] view
      int64_t half = int64_t(vals.size()) / 2;
      Tensor xs = x.narrow(0, 0, 2 * half).reshape({2, half}).transpose(0, 1);
      GS_CHECK_BITWISE(xs.to(kCuda).to(dst).cpu(), xs.to(dst));
    }
  // Many random magnitudes through the half/bfloat16 rounding, subnormals included.
  for (double scale : {1.0, 1000.0, 1e-6, 3e4}) {
    INFO("scale " << scale);
    Tensor x = Tensor::randn({4099}, 11) * scale;
    for (DType dst : {DType::f16, DType::bf16}) {
      GS_CHECK_BITWISE(x.to(kCuda).to(dst).cpu(), x.to(dst));
      GS_CHECK_BITWISE(x.to(dst).to(kCuda).to(DType::f32).cpu(), x.to(dst).to(DType::f32));
      GS_CHECK_BITWISE(x.to(DType::f64).to(kCuda).to(dst).cpu(), x.to(DType::f64).to(dst));
    }
  }
}

TEST_CASE("core/cuda: strided and broadcasting copies match the CPU") {
  GS_SKIP_WITHOUT_CUDA();
  Tensor x = Tensor::randn({5, 7, 9}, 21);
  Tensor g = x.to(kCuda);
  GS_CHECK_BITWISE(permute(g, {2, 0, 1}).contiguous().cpu(), permute(x, {2, 0, 1}).contiguous());
  GS_CHECK_BITWISE(slice(g, 2, 1, 9, 3).contiguous().cpu(), slice(x, 2, 1, 9, 3).contiguous());
  GS_CHECK_BITWISE(g.narrow(1, 2, 4).transpose(0, 2).contiguous().cpu(), x.narrow(1, 2, 4).transpose(0, 2).contiguous());
  // copy_ into a strided destination from a broadcast source, converting dtype
  for (DType dt : {DType::f32, DType::f64, DType::f16, DType::i32}) {
    INFO("dtype " << dn(dt));
    Tensor dc = Tensor::zeros({6, 9, 3}, {dt});
    Tensor dg = Tensor::zeros({6, 9, 3}, {dt, kCuda});
    Tensor src = Tensor::from_vector<double>({1, -2, 3, 4, 5, -6, 7, 8}, {8, 1});
    dc.transpose(0, 2).narrow(1, 1, 8).copy_(src.narrow(0, 0, 8));
    dg.transpose(0, 2).narrow(1, 1, 8).copy_(src.narrow(0, 0, 8).to(kCuda));
    GS_CHECK_BITWISE(dg.cpu(), dc);
  }
  // u8 elements (1-byte moves) and 8-byte moves through a non-contiguous view
  Tensor u = gt(Tensor::randn({3, 1031}, 23), Tensor::zeros({1}));  // bool
  GS_CHECK_BITWISE(u.to(kCuda).transpose(0, 1).contiguous().cpu(), u.transpose(0, 1).contiguous());
  Tensor l = Tensor::arange(3 * 1031, {DType::i64}).reshape({3, 1031});
  GS_CHECK_BITWISE(l.to(kCuda).transpose(0, 1).contiguous().cpu(), l.transpose(0, 1).contiguous());
}

TEST_CASE("core/cuda: fill writes the CPU's bits for every dtype") {
  GS_SKIP_WITHOUT_CUDA();
  for (DType dt : kAllDTypes) {
    std::vector<double> vals = {0.0, 1.0, 3.7, 100.0};
    if (!is_int(dt) || is_signed_int(dt)) vals.push_back(-3.7);
    if (is_floating(dt))
      for (double v : {1e-6, 7e4, -0.0, std::numeric_limits<double>::infinity(),
                       std::numeric_limits<double>::quiet_NaN()})
        vals.push_back(v);
    for (double v : vals) {
      INFO(dn(dt) << " value " << v);
      GS_CHECK_BITWISE(Tensor::full({5, 131}, v, {dt, kCuda}).cpu(), Tensor::full({5, 131}, v, {dt}));
    }
    // fill_ through a strided view leaves the rest untouched
    Tensor c = Tensor::zeros({7, 33}, {dt});
    Tensor g = Tensor::zeros({7, 33}, {dt, kCuda});
    c.transpose(0, 1).narrow(0, 3, 20).fill_(2.5);
    g.transpose(0, 1).narrow(0, 3, 20).fill_(2.5);
    GS_CHECK_BITWISE(g.cpu(), c);
  }
  CHECK(Tensor::zeros({0, 3}, {DType::f32, kCuda}).numel() == 0);
}

TEST_CASE("core/cuda: rand is bit-identical to the CPU and randn agrees to 1e-6") {
  GS_SKIP_WITHOUT_CUDA();
  for (int64_t n : {int64_t(1), int64_t(255), int64_t(4097), int64_t(100003)}) {
    INFO("n " << n);
    for (DType dt : {DType::f32, DType::f64, DType::f16, DType::bf16}) {
      INFO("dtype " << dn(dt));
      Generator gc(42), gg(42);
      // two successive draws from one generator: the offsets must advance identically
      for (int draw = 0; draw < 2; ++draw) {
        Tensor rc = Tensor::rand({n}, gc, {dt});
        Tensor rg = Tensor::rand({n}, gg, {dt, kCuda});
        GS_CHECK_BITWISE(rg.cpu(), rc);
        if (dt == DType::f32 || dt == DType::f64) {
          Tensor nc = Tensor::randn({n}, gc, {dt});
          Tensor ng = Tensor::randn({n}, gg, {dt, kCuda});
          GS_EXPECT_CLOSE(ng.cpu(), nc, 1e-7, 1e-6);
        }
      }
      CHECK(gc.offset() == gg.offset());
    }
  }
  // Distribution sanity on the device itself (not only agreement): U(0,1] and N(0,1) moments.
  Tensor u = Tensor::rand({200000}, 7, {DType::f64, kCuda});
  CHECK(u.mean().item() == doctest::Approx(0.5).epsilon(0.01));
  CHECK(amin(u).item() > 0.0);
  CHECK(amax(u).item() <= 1.0);
  Tensor z = Tensor::randn({200000}, 8, {DType::f64, kCuda});
  CHECK(std::abs(z.mean().item()) < 0.01);
  CHECK(var(z).item() == doctest::Approx(1.0).epsilon(0.02));
}

// ---- elementwise ------------------------------------------------------------------------------

TEST_CASE("core/cuda: unary ops and their gradients match the CPU") {
  GS_SKIP_WITHOUT_CUDA();
  using F = std::function<Tensor(const Tensor&)>;
  const std::vector<std::pair<const char*, F>> ops = {
      {"neg", [](const Tensor& x) { return neg(x); }},
      {"exp", [](const Tensor& x) { return exp(x); }},
      {"log", [](const Tensor& x) { return log(abs(x) + 0.25); }},
      {"sqrt", [](const Tensor& x) { return sqrt(abs(x) + 0.25); }},
      {"rsqrt", [](const Tensor& x) { return rsqrt(abs(x) + 0.25); }},
      {"abs", [](const Tensor& x) { return abs(x); }},
      {"sign", [](const Tensor& x) { return sign(x) * x; }},
      {"square", [](const Tensor& x) { return square(x); }},
      {"reciprocal", [](const Tensor& x) { return reciprocal(abs(x) + 0.5); }},
      {"sin", [](const Tensor& x) { return sin(x); }},
      {"cos", [](const Tensor& x) { return cos(x); }},
      {"clamp", [](const Tensor& x) { return clamp(x, -0.5, 0.7); }},
      {"relu", [](const Tensor& x) { return relu(x); }},
      {"leaky_relu", [](const Tensor& x) { return leaky_relu(x, 0.2); }},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }},
      {"tanh", [](const Tensor& x) { return tanh(x); }},
      {"softplus", [](const Tensor& x) { return softplus(x, 2.0, 3.0); }},
      {"pow 2", [](const Tensor& x) { return pow(x, 2.0); }},
      {"pow 2.5", [](const Tensor& x) { return pow(abs(x) + 0.25, 2.5); }},
      {"add_scalar", [](const Tensor& x) { return x + 1.25; }},
      {"mul_scalar", [](const Tensor& x) { return x * -3.5; }},
  };
  for (DType dt : {DType::f32, DType::f64}) {
    const Tol tol = dt == DType::f32 ? Tol{1e-5, 1e-4} : Tol{1e-12, 1e-10};
    // [37, 29]: not a multiple of anything; x * 2 spans the softplus threshold.
    Tensor x = (Tensor::randn({37, 29}, 5) * 2.0).to(dt);
    for (auto& [name, f] : ops) {
      INFO(std::string(name) << " " << dn(dt));
      gstest::expect_cpu_cuda_match([&](const std::vector<Tensor>& v) { return f(v[0]); }, {x}, tol);
      // strided input
      gstest::expect_cpu_cuda_match([&](const std::vector<Tensor>& v) { return f(v[0].transpose(0, 1)); }, {x}, tol);
    }
  }
  // In-place scaling of a strided view (mul_ runs the unary kernel with out == in).
  Tensor c = Tensor::randn({9, 10}, 6);
  Tensor g = c.to(kCuda);
  c.transpose(0, 1).narrow(0, 1, 5).mul_(3.0);
  g.transpose(0, 1).narrow(0, 1, 5).mul_(3.0);
  GS_CHECK_BITWISE(g.cpu(), c);
}

TEST_CASE("core/cuda: binary ops broadcast like the CPU, comparisons included") {
  GS_SKIP_WITHOUT_CUDA();
  using F = std::function<Tensor(const Tensor&, const Tensor&)>;
  const std::vector<std::pair<const char*, F>> ops = {
      {"add", [](const Tensor& a, const Tensor& b) { return a + b; }},
      {"sub", [](const Tensor& a, const Tensor& b) { return a - b; }},
      {"mul", [](const Tensor& a, const Tensor& b) { return a * b; }},
      {"div", [](const Tensor& a, const Tensor& b) { return a / (abs(b) + 0.5); }},
      {"maximum", [](const Tensor& a, const Tensor& b) { return maximum(a, b); }},
      {"minimum", [](const Tensor& a, const Tensor& b) { return minimum(a, b); }},
      {"pow", [](const Tensor& a, const Tensor& b) { return pow(abs(a) + 0.5, b); }},
  };
  for (DType dt : {DType::f32, DType::f64}) {
    const Tol tol = dt == DType::f32 ? Tol{1e-5, 1e-4} : Tol{1e-12, 1e-10};
    Tensor a = Tensor::randn({5, 1, 7}, 1).to(dt);
    Tensor b = Tensor::randn({3, 7}, 2).to(dt);
    Tensor big = Tensor::randn({3, 517}, 3).to(dt);  // dense fast path, odd size
    for (auto& [name, f] : ops) {
      INFO(std::string(name) << " " << dn(dt));
      gstest::expect_cpu_cuda_match([&](const std::vector<Tensor>& v) { return f(v[0], v[1]); }, {a, b}, tol);
      gstest::expect_cpu_cuda_match([&](const std::vector<Tensor>& v) { return f(v[1], v[0]); }, {a, b}, tol);
      gstest::expect_cpu_cuda_match([&](const std::vector<Tensor>& v) { return f(v[0], v[0] * 0.5); }, {big}, tol);
      gstest::expect_cpu_cuda_match(
          [&](const std::vector<Tensor>& v) { return f(v[0].transpose(0, 1), v[1].narrow(1, 2, 3).narrow(0, 1, 1)); },
          {big, b}, tol);  // [517, 3] (transposed) with a [1, 3] slice of b
    }
    // comparisons store bool; integer-valued inputs give ties
    Tensor ia = Tensor::from_vector<double>({0, 1, 2, 3, 1, 2, 0, -1, 5}, {3, 3}).to(dt);
    Tensor ib = Tensor::from_vector<double>({1, 1, 0}, {3}).to(dt);
    using C = Tensor (*)(const Tensor&, const Tensor&);
    for (C cmp : {C(gt), C(lt), C(ge), C(le), C(eq), C(ne)}) {
      GS_CHECK_BITWISE(cmp(ia.to(kCuda), ib.to(kCuda)).cpu(), cmp(ia, ib));
      GS_CHECK_BITWISE(cmp(ia.to(kCuda).transpose(0, 1), ib.to(kCuda)).cpu(), cmp(ia.transpose(0, 1), ib));
    }
    // NaN propagation of maximum/minimum
    const double nan = std::numeric_limits<double>::quiet_NaN();
    Tensor na = Tensor::from_vector<double>({nan, 1, 2, nan}, {4}).to(dt);
    Tensor nb = Tensor::from_vector<double>({0, nan, 1, 3}, {4}).to(dt);
    GS_EXPECT_CLOSE(maximum(na.to(kCuda), nb.to(kCuda)).cpu(), maximum(na, nb), 0, 0);
    GS_EXPECT_CLOSE(minimum(na.to(kCuda), nb.to(kCuda)).cpu(), minimum(na, nb), 0, 0);
  }
  // empty broadcast
  Tensor e = Tensor::zeros({0, 4}, {DType::f32, kCuda}) + Tensor::ones({4}, {DType::f32, kCuda});
  CHECK(e.shape() == Shape{0, 4});
}

TEST_CASE("core/cuda: where with broadcast conditions of any dtype") {
  GS_SKIP_WITHOUT_CUDA();
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor a = Tensor::randn({4, 1, 9}, 1).to(dt);
    Tensor b = Tensor::randn({3, 9}, 2).to(dt);
    gstest::expect_cpu_cuda_match(
        [](const std::vector<Tensor>& v) { return where(gt(v[0], v[1]), v[0] * 2.0, v[1]); }, {a, b});
    gstest::expect_cpu_cuda_match(  // float condition, strided operand
        [](const std::vector<Tensor>& v) { return where(relu(v[1]).detach(), v[0], v[1] * 3.0); },
        {a, b});
  }
  // non-float payloads (u8 condition, i64 and f16 values) move bit-exactly
  Tensor cond = Tensor::from_vector<uint8_t>({1, 0, 0, 1, 1}, {5, 1});
  for (DType dt : {DType::i64, DType::f16, DType::u8}) {
    Tensor x = Tensor::arange(15, {dt}).reshape({5, 3});
    Tensor y = Tensor::full({3}, 7.0, {dt});
    GS_CHECK_BITWISE(where(cond.to(kCuda), x.to(kCuda), y.to(kCuda)).cpu(), where(cond, x, y));
  }
}

// ---- reductions / softmax ---------------------------------------------------------------------

TEST_CASE("core/cuda: sum/mean/amax/amin match the CPU on every reduction path") {
  GS_SKIP_WITHOUT_CUDA();
  // Row lengths chosen for each kernel path: thread per row (n <= 8), warp per row (<= 2048),
  // block per row, and split rows (few rows, n >= 32768).
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{13, 5}, {1}},   {{7, 300}, {1}},   {{3, 5000}, {1}}, {{2, 70001}, {1}}, {{100003}, {}},
      {{300, 17}, {0}}, {{4, 6, 5}, {0, 2}}, {{1, 1}, {}},   {{33, 2049}, {1}}};
  for (DType dt : {DType::f32, DType::f64}) {
    const Tol tol = dt == DType::f32 ? Tol{1e-5, 1e-5} : Tol{1e-12, 1e-11};
    for (auto& [shape, dims] : cases) {
      INFO(dn(dt) << " shape " << shape_str(shape) << " dims " << shape_str(dims));
      Tensor x = Tensor::randn(shape, 9).to(dt);
      gstest::expect_cpu_cuda_match([&](const std::vector<Tensor>& v) { return sum(v[0], dims); }, {x}, tol);
      gstest::expect_cpu_cuda_match([&](const std::vector<Tensor>& v) { return mean(v[0], dims, true); }, {x}, tol);
      gstest::expect_cpu_cuda_match([&](const std::vector<Tensor>& v) { return amax(v[0], dims); }, {x}, tol);
      gstest::expect_cpu_cuda_match([&](const std::vector<Tensor>& v) { return amin(v[0], dims); }, {x}, tol);
    }
    // NaN propagates through max/min on every path; sums of empty rows are 0
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (Shape shape : {Shape{6, 5}, Shape{6, 300}, Shape{2, 5000}, Shape{2, 40000}}) {
      INFO("NaN " << shape_str(shape));
      Tensor x = Tensor::randn(shape, 10).to(dt);
      std::vector<double> v = x.to_vector<double>();
      v[size_t(shape[1] - 1)] = nan;  // last element of row 0
      Tensor xn = Tensor::from_vector(v, shape).to(dt);
      using R = Tensor (*)(const Tensor&, const Shape&, bool);
      for (R f : {R(amax), R(amin), R(sum)}) {
        Tensor r = f(xn.to(kCuda), {1}, false).cpu();
        GS_EXPECT_CLOSE(r, f(xn, {1}, false), tol.atol, tol.rtol);
        CHECK(std::isnan(r.to_vector<double>()[0]));
        CHECK_FALSE(std::isnan(r.to_vector<double>()[1]));
      }
    }
    Tensor e = Tensor::zeros({0, 4}, {dt, kCuda});
    GS_EXPECT_CLOSE(sum(e, {0}).cpu(), Tensor::zeros({4}, {dt}), 0, 0);
    CHECK(sum(e, {1}).shape() == Shape{0});
  }
  // float32 accuracy of a long sum: |error| relative to sum |x| stays near float rounding.
  Tensor x = Tensor::rand({1 << 20}, 12, {DType::f32, kCuda});
  double exact = sum(x.to(DType::f64)).item();
  CHECK(std::abs(sum(x).item() - exact) <= 1e-6 * exact);
}

TEST_CASE("core/cuda: softmax and log_softmax match the CPU") {
  GS_SKIP_WITHOUT_CUDA();
  const std::vector<std::pair<Shape, int64_t>> cases = {
      {{6, 5}, 1}, {{9, 333}, 1}, {{3, 4099}, 1}, {{4, 7, 3}, 1}, {{11}, 0}, {{2, 3, 2500}, -1}};
  for (DType dt : {DType::f32, DType::f64}) {
    const Tol tol = dt == DType::f32 ? Tol{1e-6, 1e-4} : Tol{1e-13, 1e-10};
    for (auto& [shape, dim] : cases) {
      for (double scale : {1.0, 40.0}) {  // 40: large logits test the max subtraction
        INFO(dn(dt) << " shape " << shape_str(shape) << " dim " << dim << " scale " << scale);
        Tensor x = (Tensor::randn(shape, 13) * scale).to(dt);
        gstest::expect_cpu_cuda_match([&](const std::vector<Tensor>& v) { return softmax(v[0], dim); }, {x}, tol);
        gstest::expect_cpu_cuda_match([&](const std::vector<Tensor>& v) { return log_softmax(v[0], dim); }, {x}, tol);
      }
    }
    // a NaN poisons its row only
    std::vector<double> v(2 * 50, 0.5);
    v[7] = std::numeric_limits<double>::quiet_NaN();
    Tensor xn = Tensor::from_vector(v, {2, 50}).to(dt);
    Tensor r = softmax(xn.to(kCuda), 1).cpu();
    GS_EXPECT_CLOSE(r, softmax(xn, 1), 0, 1e-6);
    CHECK(std::isnan(r.to_vector<double>()[0]));
    CHECK(r.to_vector<double>()[50] == doctest::Approx(0.02));
  }
}

// ---- indexing ---------------------------------------------------------------------------------

TEST_CASE("core/cuda: index_select and index_add match the CPU") {
  GS_SKIP_WITHOUT_CUDA();
  Tensor x = Tensor::randn({5, 6, 7}, 14);
  for (DType it : {DType::i64, DType::i32}) {
    for (int64_t dim : {0, 1, 2}) {
      INFO("index " << dn(it) << " dim " << dim);
      Tensor idx = Tensor::from_vector<int64_t>({4, 0, 0, 2, 3, 4, 1}, {7}).to(it);
      for (DType dt : {DType::f32, DType::f64}) {
        const Tol tol = dt == DType::f32 ? Tol{1e-6, 1e-5} : Tol{1e-14, 1e-12};
        // forward = index_select, backward = index_add with repeated indices (atomics)
        gstest::expect_cpu_cuda_match(
            [&](const std::vector<Tensor>& v) { return index_select(v[0], dim, idx.to(v[0].device())); },
            {x.to(dt)}, tol);
        Tensor src = Tensor::randn([&] { Shape s = x.shape(); s[size_t(dim)] = 7; return s; }(), 15).to(dt);
        gstest::expect_cpu_cuda_match(
            [&](const std::vector<Tensor>& v) { return index_add(v[0], dim, idx.to(v[0].device()), v[1]); },
            {x.to(dt), src}, tol);
      }
    }
  }
  // any element type is gathered bit-exactly (1, 2 and 8-byte moves)
  Tensor idx = Tensor::from_vector<int64_t>({2, 2, 0}, {3});
  for (DType dt : {DType::u8, DType::f16, DType::i64, DType::boolean}) {
    Tensor y = Tensor::arange(5 * 3, {DType::i64}).reshape({5, 3}).to(dt);
    GS_CHECK_BITWISE(index_select(y.to(kCuda), 0, idx.to(kCuda)).cpu(), index_select(y, 0, idx));
  }
  // an empty index selects nothing
  Tensor none = Tensor::zeros({0}, {DType::i64, kCuda});
  CHECK(index_select(x.to(kCuda), 1, none).shape() == Shape{5, 0, 7});
}

// ---- GEMM -------------------------------------------------------------------------------------

TEST_CASE("core/cuda: matmul matches the CPU (transposes, batches, broadcasting)") {
  GS_SKIP_WITHOUT_CUDA();
  Tf32Scope exact(false);
  using F = std::function<Tensor(const std::vector<Tensor>&)>;
  struct Case {
    const char* name;
    Shape a, b;
    F f;
  };
  const std::vector<Case> cases = {
      {"plain", {37, 53}, {53, 29}, [](auto& v) { return matmul(v[0], v[1]); }},
      {"a^T", {53, 37}, {53, 29}, [](auto& v) { return matmul(v[0].transpose(0, 1), v[1]); }},
      {"b^T", {37, 53}, {29, 53}, [](auto& v) { return matmul(v[0], v[1].transpose(0, 1)); }},
      {"a^T b^T", {53, 37}, {29, 53}, [](auto& v) { return matmul(v[0].transpose(0, 1), v[1].transpose(0, 1)); }},
      {"batched", {3, 17, 19}, {3, 19, 5}, [](auto& v) { return bmm(v[0], v[1]); }},
      {"batch folded", {3, 17, 19}, {19, 5}, [](auto& v) { return matmul(v[0], v[1]); }},
      {"broadcast batch", {2, 1, 4, 6}, {3, 6, 5}, [](auto& v) { return matmul(v[0], v[1]); }},
      {"batched b^T", {4, 9, 8}, {4, 7, 8}, [](auto& v) { return matmul(v[0], v[1].transpose(1, 2)); }},
      {"vec-mat", {53}, {53, 29}, [](auto& v) { return matmul(v[0], v[1]); }},
      {"mat-vec", {37, 53}, {53}, [](auto& v) { return matmul(v[0], v[1]); }},
      {"dot", {53}, {53}, [](auto& v) { return matmul(v[0], v[1]); }},
      {"linear", {6, 33}, {10, 33}, [](auto& v) { return linear(v[0], v[1], v[1].sum({1})); }},
  };
  for (DType dt : {DType::f32, DType::f64}) {
    const Tol tol = dt == DType::f32 ? Tol{1e-4, 1e-4} : Tol{1e-12, 1e-10};
    for (const Case& c : cases) {
      INFO(std::string(c.name) << " " << dn(dt));
      gstest::expect_cpu_cuda_match(c.f, {Tensor::randn(c.a, 16).to(dt), Tensor::randn(c.b, 17).to(dt)}, tol);
    }
  }
  // k == 0 and empty outputs
  GS_EXPECT_CLOSE(matmul(Tensor::ones({3, 0}, {DType::f32, kCuda}), Tensor::ones({0, 4}, {DType::f32, kCuda})).cpu(),
                  Tensor::zeros({3, 4}), 0, 0);
  CHECK(matmul(Tensor::ones({0, 3}, {DType::f32, kCuda}), Tensor::ones({3, 4}, {DType::f32, kCuda})).shape() ==
        Shape{0, 4});
}

TEST_CASE("core/cuda: gemm kernel with batch stride 0, beta and k == 0") {
  GS_SKIP_WITHOUT_CUDA();
  using backend::make_view;
  for (DType dt : {DType::f64, DType::f32}) {
    INFO(dn(dt));
    const int64_t batch = 3, m = 5, n = 7, k = 4;
    Tensor a = Tensor::randn({m, k}, 18).to(dt);             // one matrix shared by the batch
    Tensor b = Tensor::randn({batch, n, k}, 19).to(dt);      // used transposed
    Tensor c0 = Tensor::randn({batch, m, n}, 20).to(dt);
    auto run = [&](Device d, int64_t kk, double beta) {
      Tensor ad = a.to(d), bd = b.to(d), cd = c0.to(d).clone();
      GS_DISPATCH(d, gemm, false, true, m, n, kk, 0.5, make_view(ad), k, 0, make_view(bd), k, n * k, beta,
                  make_view(cd), n, m * n, batch);
      return cd.cpu();
    };
    const Tol tol = dt == DType::f32 ? Tol{1e-5, 1e-5} : Tol{1e-13, 1e-12};
    Tensor ref = run(Device::cpu(), k, 2.0);
    GS_EXPECT_CLOSE(run(kCuda, k, 2.0), ref, tol.atol, tol.rtol);
    // closed form for one element: C[b,i,j] = 0.5 * sum_p A[i,p] B[b,j,p] + 2 * C0[b,i,j]
    {
      auto va = a.to_vector<double>(), vb = b.to_vector<double>(), vc = c0.to_vector<double>();
      double e = 2.0 * vc[size_t((2 * m + 1) * n + 6)];
      for (int64_t p = 0; p < k; ++p) e += 0.5 * va[size_t(1 * k + p)] * vb[size_t((2 * n + 6) * k + p)];
      CHECK(run(kCuda, k, 2.0).to_vector<double>()[size_t((2 * m + 1) * n + 6)] == doctest::Approx(e).epsilon(1e-5));
    }
    // k == 0: C = beta * C, and beta == 0 must overwrite even NaN
    GS_EXPECT_CLOSE(run(kCuda, 0, 2.0), c0 * 2.0, 0, 0);
    c0 = gstest::poison(c0.clone());
    GS_EXPECT_CLOSE(run(kCuda, 0, 0.0), Tensor::zeros({batch, m, n}, {dt}), 0, 0);
    GS_EXPECT_CLOSE(run(kCuda, k, 0.0), run(Device::cpu(), k, 0.0), tol.atol, tol.rtol);
  }
}

TEST_CASE("core/cuda: TF32 is used only when allowed") {
  GS_SKIP_WITHOUT_CUDA();
  Tensor a = Tensor::randn({64, 256}, 21), b = Tensor::randn({256, 64}, 22);
  Tensor ref = matmul(a.to(DType::f64), b.to(DType::f64)).to(DType::f32);
  {
    Tf32Scope off(false);
    GS_EXPECT_CLOSE(matmul(a.to(kCuda), b.to(kCuda)).cpu(), ref, 1e-4, 1e-4);  // exact FP32
  }
  {
    Tf32Scope on(true);
    // TF32 keeps 10 mantissa bits: a 256-term dot product of N(0,1) numbers errs by ~1e-2
    GS_EXPECT_CLOSE(matmul(a.to(kCuda), b.to(kCuda)).cpu(), ref, 0.1, 0.01);
    // float64 is never affected
    GS_EXPECT_CLOSE(matmul(a.to(DType::f64).to(kCuda), b.to(DType::f64).to(kCuda)).cpu(),
                    matmul(a.to(DType::f64), b.to(DType::f64)), 1e-12, 1e-12);
  }
}

// ---- whole autograd path ----------------------------------------------------------------------

TEST_CASE("core/cuda: MLP forward and backward match the CPU") {
  GS_SKIP_WITHOUT_CUDA();
  Tf32Scope exact(false);
  gstest::Fn mlp = [](const std::vector<Tensor>& v) {
    // x [19, 33] -> 47 -> 10, log-softmax, plus an MSE term through a broadcast and a gather
    Tensor h = leaky_relu(linear(v[0], v[1], v[2]), 0.2);
    Tensor o = log_softmax(linear(tanh(h), v[3], v[4]), 1);
    Tensor idx = Tensor::from_vector<int64_t>({0, 3, 3, 9}, {4}).to(o.device());
    return o + mse_loss(index_select(o, 1, idx), sigmoid(h.narrow(1, 0, 4))) * 0.5;
  };
  for (DType dt : {DType::f32, DType::f64}) {
    INFO(dn(dt));
    std::vector<Tensor> in = {Tensor::randn({19, 33}, 30), Tensor::randn({47, 33}, 31) * 0.2, Tensor::randn({47}, 32),
                              Tensor::randn({10, 47}, 33) * 0.2, Tensor::randn({10}, 34)};
    for (auto& t : in) t = t.to(dt);
    gstest::expect_cpu_cuda_match(mlp, in, dt == DType::f32 ? Tol{1e-5, 1e-4} : Tol{1e-12, 1e-10});
  }
}

TEST_CASE("core/cuda: gradcheck and gradgradcheck run on the GPU") {
  GS_SKIP_WITHOUT_CUDA();
  Tensor a = Tensor::randn({3, 4}, 1, {DType::f64, kCuda});
  Tensor b = Tensor::randn({4, 2}, 2, {DType::f64, kCuda});
  gstest::Fn f = [](const std::vector<Tensor>& x) {
    CHECK(x[0].is_cuda());
    return tanh(matmul(x[0], x[1])) * sigmoid(x[0].sum({1}, true)) + softmax(x[0], 1).sum({1}, true);
  };
  gstest::gradcheck(f, {a, b});
  gstest::gradgradcheck(f, {a, b});
}

// ---- int64 indexing ---------------------------------------------------------------------------

TEST_CASE("core/cuda: kernels index past 2^32 elements") {
  GS_SKIP_WITHOUT_CUDA();
  // 2^32 + 7 one-byte elements (4 GiB per tensor, 12 GiB at most): indices beyond 32 bits in the
  // grid-stride loops, fill, the converting copy and the 64-bit strided-offset path.
  const int64_t n = (int64_t(1) << 32) + 7;
  Tensor t = Tensor::full({n}, 3.0, {DType::u8, kCuda});
  t.narrow(0, n - 3, 2).fill_(9.0);
  CHECK(t.narrow(0, n - 5, 5).to_vector<int>() == std::vector<int>{3, 3, 9, 9, 3});
  Tensor bools = t.to(DType::boolean);
  CHECK(bools.narrow(0, n - 2, 2).to_vector<int>() == std::vector<int>{1, 1});
  bools = Tensor();
  // same-dtype strided copy: [M, 2] -> transposed [2, M] made dense, M = (n - 1) / 2
  const int64_t m = (n - 1) / 2;
  Tensor strided = t.narrow(0, 0, n - 1).reshape({m, 2}).transpose(0, 1).contiguous();
  // row r, column c holds t[2c + r]; the last three columns are t[n-7..n-2]
  CHECK(strided.narrow(1, m - 3, 3).to_vector<int>() == std::vector<int>{3, 3, 9, 3, 3, 9});
}
