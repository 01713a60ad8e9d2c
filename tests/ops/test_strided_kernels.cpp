// The CPU elementwise kernels (copy, fill, unary, binary, where) on random strided layouts:
// permuted, stepped, offset and expanded (stride 0) operands of random shapes, written into a
// strided view of a NaN-poisoned buffer. Every element of the view must equal a reference read
// straight from memory through the strides, and every element outside it must still be NaN.
// Large shapes exercise the OpenMP split, whose chunks start and end in the middle of rows.
#include "backend/kernels.hpp"
#include "core/core_util.hpp"

using namespace gradstyle;
using backend::make_broadcast_view;
using backend::make_view;

namespace {

// Value of t at a logical multi-index, read through shape/strides with no library code.
double at(const Tensor& t, const std::vector<int64_t>& idx) {
  int64_t off = 0;
  size_t lead = idx.size() - size_t(t.dim());
  for (size_t d = 0; d < size_t(t.dim()); ++d) {
    int64_t i = t.shape()[d] == 1 ? 0 : idx[lead + d];
    off += i * t.strides()[d];
  }
  switch (t.dtype()) {
    case DType::f32: return static_cast<const float*>(t.raw_data())[off];
    case DType::f64: return static_cast<const double*>(t.raw_data())[off];
    case DType::i64: return double(static_cast<const int64_t*>(t.raw_data())[off]);
    case DType::boolean: return static_cast<const uint8_t*>(t.raw_data())[off] ? 1.0 : 0.0;
    default: FAIL("unexpected dtype"); return 0;
  }
}

int64_t flat_offset(const Tensor& t, const std::vector<int64_t>& idx) {
  int64_t off = t.offset();
  for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * t.strides()[d];
  return off;
}

struct Rng {
  uint64_t s;
  uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  int64_t below(int64_t n) { return int64_t(next() % uint64_t(n)); }
};

// A view of logical shape `shape` laid out in one of several ways over a fresh random buffer.
Tensor make_operand(const Shape& shape, Rng& r, DType dt, uint64_t seed, int kind) {
  autograd::NoGradGuard ng;
  const int64_t nd = int64_t(shape.size());
  switch (kind) {
    case 1: {  // permuted storage
      std::vector<int64_t> perm(static_cast<size_t>(nd));
      for (int64_t i = 0; i < nd; ++i) perm[size_t(i)] = i;
      for (int64_t i = nd - 1; i > 0; --i) std::swap(perm[size_t(i)], perm[size_t(r.below(i + 1))]);
      Shape bs(static_cast<size_t>(nd)), inv(static_cast<size_t>(nd));
      for (int64_t i = 0; i < nd; ++i) bs[size_t(i)] = shape[size_t(perm[size_t(i)])];
      for (int64_t i = 0; i < nd; ++i) inv[size_t(perm[size_t(i)])] = i;
      return Tensor::randn(bs, seed, {dt}).permute(inv);
    }
    case 2: {  // every dim stepped by 2 with an offset of 1
      Shape bs;
      for (int64_t s : shape) bs.push_back(2 * s + 1);
      Tensor t = Tensor::randn(bs, seed, {dt});
      for (int64_t d = 0; d < nd; ++d) t = slice(t, d, 1, 1 + 2 * shape[size_t(d)], 2);
      return t;
    }
    case 3: {  // some dims broadcast (stride 0)
      Shape bs = shape;
      for (auto& s : bs)
        if (r.below(2)) s = 1;
      return Tensor::randn(bs, seed, {dt}).expand(shape);
    }
    case 4: {  // last dim narrowed out of a wider row (row stride > width)
      if (nd == 0) break;
      Shape bs = shape;
      bs.back() += 3;
      return Tensor::randn(bs, seed, {dt}).narrow(nd - 1, 2, shape.back());
    }
    default: break;
  }
  return Tensor::randn(shape, seed, {dt});
}

Shape random_shape(Rng& r, bool large) {
  if (large) {
    const Shape options[] = {{3, 37, 331}, {70001}, {2, 5, 61, 59}, {257, 131}};
    return options[r.below(4)];
  }
  Shape s(size_t(r.below(5)));  // 0-d .. 4-d
  for (auto& d : s) d = 1 + r.below(4);
  return s;
}

// A NaN-poisoned buffer (`whole`, 1-D over the entire storage) and a strided view of it with
// logical shape `shape`: dense, permuted, stepped or narrowed (never broadcast: outputs are unique).
std::pair<Tensor, Tensor> poisoned_out(const Shape& shape, Rng& r, DType dt) {
  const int kinds[] = {0, 1, 2, 4};
  Tensor view = make_operand(shape, r, dt, 1, kinds[r.below(4)]);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = view.storage();
  impl->dtype = dt;
  impl->shape = {int64_t(view.storage()->nbytes() / dtype_size(dt))};
  impl->strides = {1};
  Tensor whole(impl);
  gstest::poison(whole);
  return {whole, view};
}

// Checks `view` against ref(idx) for every logical index and that the rest of `whole` is NaN.
void check_written(const Tensor& whole, const Tensor& view, const std::function<double(const std::vector<int64_t>&)>& ref,
                   double tol) {
  std::vector<char> covered(size_t(whole.numel()), 0);
  int64_t bad = 0;
  for (int64_t i = 0; i < view.numel(); ++i) {
    auto idx = coretest::unravel(i, view.shape());
    double got = at(view, idx), want = ref(idx);
    bool ok = std::isnan(want) ? std::isnan(got) : std::abs(got - want) <= tol * (1 + std::abs(want));
    if (!ok && bad++ < 3) {
      INFO("element " << i << " of " << shape_str(view.shape()) << ": got " << got << " want " << want);
      CHECK(ok);
    }
    covered[size_t(flat_offset(view, idx))] = 1;
  }
  CHECK(bad == 0);
  auto w = whole.to_vector<double>();
  int64_t touched = 0;
  for (int64_t j = 0; j < int64_t(w.size()); ++j)
    if (!covered[size_t(j)] && !std::isnan(w[size_t(j)])) ++touched;
  CHECK(touched == 0);
}

}  // namespace

TEST_CASE("ops/strided_kernels: binary, unary, where, copy and fill on random strided layouts") {
  Rng r{0x9E3779B97F4A7C15ull};
  for (int trial = 0; trial < 240; ++trial) {
    const bool large = trial % 40 == 39;
    const DType dt = trial % 3 == 0 ? DType::f64 : DType::f32;
    Shape s = random_shape(r, large);
    // b broadcasts from a shape with some dims 1 and possibly fewer dims
    Shape sb = s;
    for (auto& d : sb)
      if (r.below(3) == 0) d = 1;
    if (!sb.empty() && r.below(3) == 0) sb.erase(sb.begin());
    Tensor a = make_operand(s, r, dt, 100 + trial, int(r.below(5)));
    Tensor b = make_operand(sb, r, dt, 200 + trial, int(r.below(5)));
    INFO("trial " << trial << " shape " << shape_str(s) << " a strides " << shape_str(a.strides()) << " b "
                  << shape_str(sb) << " strides " << shape_str(b.strides()));
    const double tol = dt == DType::f32 ? 1e-6 : 1e-14;

    auto [w1, o1] = poisoned_out(s, r, dt);
    cpu::binary(backend::BinaryOp::Sub, make_view(o1), make_broadcast_view(a, s), make_broadcast_view(b, s));
    check_written(w1, o1, [&](const std::vector<int64_t>& i) { return at(a, i) - at(b, i); }, tol);

    auto [w2, o2] = poisoned_out(s, r, dt);
    cpu::binary(backend::BinaryOp::Maximum, make_view(o2), make_broadcast_view(b, s), make_broadcast_view(a, s));
    check_written(w2, o2, [&](const std::vector<int64_t>& i) { return std::max(at(b, i), at(a, i)); }, tol);

    Tensor cmp = Tensor::empty(s, {DType::boolean});
    cpu::binary(backend::BinaryOp::Gt, make_view(cmp), make_broadcast_view(a, s), make_broadcast_view(b, s));
    int64_t cmp_bad = 0;
    for (int64_t i = 0; i < cmp.numel(); ++i) {
      auto idx = coretest::unravel(i, s);
      cmp_bad += at(cmp, idx) != double(at(a, idx) > at(b, idx));
    }
    CHECK(cmp_bad == 0);

    auto [w3, o3] = poisoned_out(s, r, dt);
    cpu::unary(backend::UnaryOp::Tanh, make_view(o3), make_view(a), 0, 0);
    check_written(w3, o3, [&](const std::vector<int64_t>& i) { return std::tanh(at(a, i)); }, tol);

    auto [w4, o4] = poisoned_out(s, r, dt);
    cpu::unary(backend::UnaryOp::Clamp, make_view(o4), make_view(a), -0.5, 0.25);
    check_written(w4, o4, [&](const std::vector<int64_t>& i) { return std::min(std::max(at(a, i), -0.5), 0.25); }, tol);

    auto [w5, o5] = poisoned_out(s, r, dt);
    cpu::copy(make_view(o5), make_broadcast_view(b, s));
    check_written(w5, o5, [&](const std::vector<int64_t>& i) { return at(b, i); }, 0);

    // converting copy (the other float dtype) into a poisoned strided view
    const DType other = dt == DType::f32 ? DType::f64 : DType::f32;
    auto [w6, o6] = poisoned_out(s, r, other);
    cpu::copy(make_view(o6), make_view(a));
    check_written(w6, o6, [&](const std::vector<int64_t>& i) { return at(a, i); }, 1e-7);  // one float rounding

    auto [w7, o7] = poisoned_out(s, r, dt);
    Tensor cond = gt(a, Tensor::scalar(0.0, {dt}));
    cpu::where(make_view(o7), make_broadcast_view(cond, s), make_broadcast_view(a, s), make_broadcast_view(b, s));
    check_written(w7, o7, [&](const std::vector<int64_t>& i) { return at(a, i) > 0 ? at(a, i) : at(b, i); }, 0);

    auto [w8, o8] = poisoned_out(s, r, dt);
    cpu::fill(make_view(o8), -3.5);
    check_written(w8, o8, [](const std::vector<int64_t>&) { return -3.5; }, 0);
  }
}

TEST_CASE("ops/strided_kernels: integer and bool copies and fills through strides") {
  Tensor x = Tensor::from_vector<int64_t>({1, -2, 3, -4, 5, -6}, {2, 3});
  Tensor t = x.transpose(0, 1);  // [3,2]
  CHECK(t.to(DType::f32).to_vector<double>() == std::vector<double>{1, -4, -2, 5, 3, -6});
  CHECK(t.contiguous().to_vector<int64_t>() == std::vector<int64_t>{1, -4, -2, 5, 3, -6});
  Tensor bools = Tensor::zeros({4, 4}, {DType::boolean});
  {
    autograd::NoGradGuard ng;
    slice(bools, 1, 0, 4, 3).fill_(1);
  }
  CHECK(bools.to_vector<double>() == std::vector<double>{1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1});
  Tensor h = Tensor::from_vector<float>({0.5f, -1.0f, 2.0f, 65504.0f}, {2, 2}).to(DType::f16);
  CHECK(h.transpose(0, 1).to(DType::f32).to_vector<double>() == std::vector<double>{0.5, 2.0, -1.0, 65504.0});
}
