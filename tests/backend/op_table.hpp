#pragma once
// The op-case table: one row per (op, situation). The runner (runner.cpp) takes every row through
// every backend x dtype (f32 and f64 on the CPU, f32 on CUDA when a GPU is present) with
// NaN-poisoned allocations, compares against the float64 CPU result, checks gradients by finite
// differences (and second order where the row says so) and compares CPU with CUDA on the same
// seeded inputs. See docs/testing.md ("Adding a row").
#include <functional>
#include <string>
#include <vector>

#include "support/harness.hpp"

namespace gsbackend {

using namespace gradstyle;

// How an input is stored. The op always sees the shape given in In::shape; Transposed and Strided
// hand it a non-contiguous view of a differently laid out leaf.
enum class Layout {
  Dense,
  Transposed,  // stored with the last two dims swapped, then transposed back (a permuted view)
  Strided,     // stored with the last dim doubled (gaps hold NaN), viewed with step 2
};

enum class Init {
  Normal,    // N(0, 1)
  Positive,  // U(0.5, 1.5]: domains of log, sqrt, rsqrt, pow with real exponents, variances
  AwayFromZero,  // +-U(0.5, 1.5]: denominators, reciprocal
  Custom,    // In::make returns the values
};

// One input of a row. Values are made in float64 on the CPU (so every backend and dtype sees the
// same numbers, rounded), then converted to the case's dtype (unless follow_dtype is false: index
// and bool tensors, float64 homographies) and moved to the case's device.
struct In {
  Shape shape;
  uint64_t seed = 1;
  Init init = Init::Normal;
  bool grad = true;  // a differentiable input: gradients are checked with respect to it
  Layout layout = Layout::Dense;
  bool follow_dtype = true;
  std::function<Tensor()> make;  // Init::Custom: a CPU tensor of `shape`

  In& T() { layout = Layout::Transposed; return *this; }
  In& S() { layout = Layout::Strided; return *this; }
  In& constant() { grad = false; return *this; }
};

inline In X(Shape s, uint64_t seed) { return In{std::move(s), seed}; }
inline In Pos(Shape s, uint64_t seed) { return In{std::move(s), seed, Init::Positive}; }
inline In Nz(Shape s, uint64_t seed) { return In{std::move(s), seed, Init::AwayFromZero}; }
// A constant float input (no gradient, follows the case's dtype).
inline In C(Shape s, uint64_t seed, Init init = Init::Normal) { return In{std::move(s), seed, init, false}; }
// A custom-valued input; follow_dtype = false keeps the made dtype (indices, masks).
inline In Made(Shape s, std::function<Tensor()> make, bool grad, bool follow_dtype = true) {
  In in{std::move(s), 0, Init::Custom, grad};
  in.follow_dtype = follow_dtype;
  in.make = std::move(make);
  return in;
}
// A constant int64 index tensor.
inline In Index(std::vector<int64_t> v) {
  Shape s{int64_t(v.size())};
  return Made(s, [v, s] { return Tensor::from_vector(v, s); }, false, false);
}

enum Flag : unsigned {
  kForward = 0,         // forward only (the output may be non-float, or not differentiable)
  kGrad = 1u << 0,      // backward on every backend x dtype + float64 finite-difference gradcheck
  kGradGrad = 1u << 1 | kGrad,  // + gradgradcheck (the op declares exact second derivatives)
  kGradGradThrows = 1u << 2,    // second order is declared unsupported: it must throw AutogradError
  kNoGradcheck = 1u << 3,       // backward is checked across backends but not by finite differences
                                // (ties or kinks where one-sided slopes differ by design)
  kNoCuda = 1u << 4,            // a CPU-only function (the row is skipped on CUDA, visibly)
  kFixedDtype = 1u << 5,        // the output's dtype/device do not follow the inputs' (float64 CPU results)
  kMayNaN = 1u << 6,            // NaN outputs are expected (the row feeds NaN on purpose)
  kNoF32Ref = 1u << 7,          // f32 results are not compared with f64 (discrete choices may flip)
  kNondeterministic = 1u << 8,  // repeated CPU runs may differ in the last bits
};

struct Ctx {
  Device device;
  DType dtype;
  std::vector<Tensor> xs;  // the inputs as the op sees them (views applied)
  Tensor y;                // the output
};

struct OpCase {
  std::string op;    // the test case is backend/<op>
  std::string name;  // the situation this row covers
  std::vector<In> in;
  std::function<Tensor(const std::vector<Tensor>&)> f;  // takes the inputs in `in` order
  unsigned flags = kGrad;
  std::vector<std::string> covers = {};  // public functions this row exercises besides `op`
  gstest::Tol f32 = {1e-4, 1e-3};        // f32 (and CUDA) result vs the float64 CPU result
  std::function<void(const Ctx&)> extra = {};  // row-specific assertions, run on every config
};

std::vector<OpCase> op_table();

// Public functions of include/gradstyle/ops/*.hpp that have no row, each with the reason.
struct Exclusion {
  const char* name;
  const char* why;
};
const std::vector<Exclusion>& table_exclusions();

// Packs several outputs into one flat tensor (same dtype and device) so multi-output functions
// are one row.
inline Tensor pack(const std::vector<Tensor>& ys) {
  std::vector<Tensor> flat;
  for (const Tensor& y : ys) flat.push_back(reshape(y, {-1}));
  return cat(flat, 0);
}

}  // namespace gsbackend
