// Runs the op-case table (op_table.cpp): one doctest test case backend/<op> per public op, each
// taking all of that op's rows through every backend x dtype. Per row:
//  1. the float64 CPU result (output and input gradients) is the reference;
//  2. on every config (CPU f32/f64; CUDA f32 when a GPU is present, otherwise skipped visibly) the
//     forward and backward run with NaN-poisoned allocations; outputs and gradients must hold no
//     NaN when the inputs hold none, have the config's dtype and device, match the reference
//     within the row's tolerance, and repeat bit for bit on the CPU;
//  3. float64 finite-difference gradcheck, and gradgradcheck where the row declares it (or a
//     check that second order throws where the op declares it unsupported);
//  4. CPU vs CUDA on the same seeded inputs (outputs and input gradients).
// backend/coverage checks that every public function of include/gradstyle/ops/*.hpp has a row
// or a reasoned exclusion.
#include <array>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <utility>

#include "op_table.hpp"
#include "poison_alloc.hpp"

namespace gsbackend {
namespace {

const std::vector<OpCase>& table() {
  static const std::vector<OpCase> t = op_table();
  return t;
}

bool is_float(DType t) { return t == DType::f32 || t == DType::f64; }

bool has_nan(const Tensor& t) {
  if (!t.defined() || !is_float(t.dtype())) return false;
  for (double v : t.to_vector<double>())
    if (std::isnan(v)) return true;
  return false;
}

Tensor values_of(const In& in) {
  Options f64{DType::f64};
  switch (in.init) {
    case Init::Normal:
      return Tensor::randn(in.shape, in.seed, f64);
    case Init::Positive:
      return add_scalar(Tensor::rand(in.shape, in.seed, f64), 0.5);
    case Init::AwayFromZero: {
      Tensor mag = add_scalar(Tensor::rand(in.shape, in.seed, f64), 0.5);
      Tensor neg_side = lt(Tensor::randn(in.shape, in.seed + 7919, f64), Tensor::scalar(0.0, f64));
      return where(neg_side, neg(mag), mag);
    }
    case Init::Custom: {
      Tensor v = in.make();
      if (v.shape() != in.shape)
        throw ShapeError("op table: custom input made " + shape_str(v.shape()) + ", declared " + shape_str(in.shape));
      return v;
    }
  }
  return {};
}

// The leaf as stored for this config (see Layout).
Tensor stored_input(const In& in, DType dt, Device d) {
  autograd::NoGradGuard ng;
  Tensor v = values_of(in);
  if (in.follow_dtype) v = v.to(dt);
  Tensor s = v;
  if (in.layout == Layout::Transposed) {
    s = transpose(v, -1, -2).contiguous();
  } else if (in.layout == Layout::Strided) {
    Tensor gaps = Tensor::full(v.shape(), std::numeric_limits<double>::quiet_NaN(), {v.dtype()});
    s = flatten(stack({v, gaps}, -1), v.dim() - 1, -1);  // [..., 2n]: v0, NaN, v1, NaN, ...
  }
  return s.to(d).clone();
}

Tensor view_of(const Tensor& s, const In& in) {
  if (in.layout == Layout::Transposed) return transpose(s, -1, -2);
  if (in.layout == Layout::Strided) return slice(s, -1, 0, s.size(-1), 2);
  return s;
}

std::vector<Tensor> stored_inputs(const OpCase& row, DType dt, Device d) {
  std::vector<Tensor> r;
  for (const In& in : row.in) r.push_back(stored_input(in, dt, d));
  return r;
}

std::vector<Tensor> grad_leaves(const OpCase& row, const std::vector<Tensor>& stored) {
  std::vector<Tensor> r;
  for (size_t i = 0; i < row.in.size(); ++i)
    if (row.in[i].grad) r.push_back(stored[i]);
  return r;
}

// f over the differentiable inputs; constants come from `by_device` (stored for each device).
gstest::Fn fn_over_grads(const OpCase& row, std::map<DeviceType, std::vector<Tensor>> by_device) {
  return [&row, by_device](const std::vector<Tensor>& g) {
    DeviceType dt = g.empty() ? by_device.begin()->first : g[0].device().type;
    const std::vector<Tensor>& stored = by_device.at(dt);
    std::vector<Tensor> xs;
    size_t k = 0;
    for (size_t i = 0; i < row.in.size(); ++i) xs.push_back(view_of(row.in[i].grad ? g.at(k++) : stored[i], row.in[i]));
    return row.f(xs);
  };
}

struct Result {
  Tensor y;                   // output, on the CPU
  std::vector<Tensor> grads;  // per differentiable input, on the CPU (undefined when none)
};

std::string label(const OpCase& row) { return row.op + " [" + row.name + "]"; }

// Runs one row on one config; checks poisoning, dtype/device, determinism and `extra`.
Result run_config(const OpCase& row, DType dt, Device d) {
  std::vector<Tensor> stored = stored_inputs(row, dt, d);
  std::vector<Tensor> leaves = grad_leaves(row, stored);
  const bool backward = (row.flags & kGrad) != 0;
  if (backward)
    for (Tensor& l : leaves) l.requires_grad_();
  std::vector<Tensor> xs;
  for (size_t i = 0; i < row.in.size(); ++i) xs.push_back(view_of(stored[i], row.in[i]));
  bool nan_free_inputs = true;
  for (const Tensor& x : xs) nan_free_inputs = nan_free_inputs && !has_nan(x);

  Result r;
  Tensor y;
  {
    PoisonScope poison;
    if (d.is_cuda()) {
      // Output sizes from the CPU run of the same row are not known here; poison generously.
      prepoison_device(d, {size_t(1) << 12, size_t(1) << 14, size_t(1) << 16});
    }
    y = row.f(xs);
  }
  REQUIRE(y.defined());
  const bool check_nan = nan_free_inputs && !(row.flags & kMayNaN);
  if (check_nan) {
    INFO("NaN in the output: an element was not written (the buffer started as NaN) or the math overflowed");
    CHECK_FALSE(has_nan(y));
  }
  if (is_float(y.dtype()) && !(row.flags & kFixedDtype)) {
    CHECK(y.dtype() == dt);
    CHECK(y.device() == d);
  }
  if (d.is_cpu() && !(row.flags & kNondeterministic)) {
    Tensor again;
    {
      PoisonScope poison;
      again = row.f(xs);
    }
    INFO("a second run on the same inputs differs (must repeat bit for bit on the CPU)");
    auto c = gstest::compare(again, y, {0.0, 0.0});
    CHECK(c.ok);
  }
  if (row.extra) row.extra(Ctx{d, dt, xs, y});
  r.y = y.detach().cpu();

  if (backward && !leaves.empty() && is_float(y.dtype())) {
    Tensor w = Tensor::randn(y.shape(), 99, {DType::f64}).to(y.dtype()).to(y.device());
    {
      PoisonScope poison;
      Tensor loss = sum(mul(y, w));
      REQUIRE(loss.requires_grad());
      loss.backward();
    }
    for (size_t k = 0; k < leaves.size(); ++k) {
      Tensor g = leaves[k].grad();
      if (g.defined()) {
        INFO("gradient of differentiable input " << k);
        CHECK(g.shape() == leaves[k].shape());
        if (check_nan) {
          // Strided leaves have NaN in their gaps; their gradient there is 0, never NaN.
          INFO("NaN in the gradient");
          CHECK_FALSE(has_nan(g));
        }
        CHECK(g.dtype() == leaves[k].dtype());
      }
      r.grads.push_back(g.defined() ? g.detach().cpu() : Tensor());
    }
  }
  return r;
}

void expect_matches_reference(const OpCase& row, const Result& got, const Result& ref) {
  if (row.flags & kNoF32Ref) return;
  {
    INFO("output vs the float64 CPU result");
    auto c = gstest::compare(got.y, ref.y, row.f32);
    INFO(c.shape_msg << " worst at " << c.worst_index << ": " << c.a_val << " vs " << c.b_val << " = "
                     << 100 * c.worst_ratio << "% of threshold");
    CHECK(c.ok);
  }
  for (size_t k = 0; k < got.grads.size() && k < ref.grads.size(); ++k) {
    if (!got.grads[k].defined() || !ref.grads[k].defined()) {
      INFO("gradient of input " << k << " defined on one config only");
      CHECK(got.grads[k].defined() == ref.grads[k].defined());
      continue;
    }
    INFO("gradient of differentiable input " << k << " vs the float64 CPU result");
    auto c = gstest::compare(got.grads[k], ref.grads[k], row.f32);
    INFO(c.shape_msg << " worst at " << c.worst_index << ": " << c.a_val << " vs " << c.b_val << " = "
                     << 100 * c.worst_ratio << "% of threshold");
    CHECK(c.ok);
  }
}


template <class F>
void guarded(const OpCase& row, const std::string& step, F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    FAIL_CHECK(label(row) << ", " << step << ": threw " << std::string(e.what()));
  }
}

void run_op(const std::string& op) {
  std::vector<const OpCase*> rows;
  for (const OpCase& r : table())
    if (r.op == op) rows.push_back(&r);
  REQUIRE(!rows.empty());

  std::map<const OpCase*, Result> refs;
  for (const OpCase* row : rows) {
    INFO(label(*row) << " on cpu float64 (the reference)");
    guarded(*row, "reference", [&] { refs[row] = run_config(*row, DType::f64, Device::cpu()); });
  }

  gstest::for_each_device([&](Device d) {
    for (const OpCase* row : rows) {
      if (d.is_cuda() && (row->flags & kNoCuda)) continue;
      for (DType dt : {DType::f64, DType::f32}) {
        if (d.is_cuda() && dt == DType::f64) continue;  // CUDA is checked in float32
        if (d.is_cpu() && dt == DType::f64) continue;   // the reference run
        INFO(label(*row) << " on " << d.str() << " " << std::string(dtype_name(dt)));
        guarded(*row, d.str() + " " + dtype_name(dt), [&] {
          Result got = run_config(*row, dt, d);
          if (refs.count(row)) expect_matches_reference(*row, got, refs.at(row));
        });
      }
    }
  });

  for (const OpCase* row : rows) {
    std::vector<Tensor> stored = stored_inputs(*row, DType::f64, Device::cpu());
    std::vector<Tensor> leaves = grad_leaves(*row, stored);
    if (leaves.empty()) continue;
    gstest::Fn f = fn_over_grads(*row, {{DeviceType::CPU, stored}});
    if ((row->flags & kGrad) && !(row->flags & kNoGradcheck)) {
      INFO(label(*row) << ": gradcheck (float64 finite differences)");
      guarded(*row, "gradcheck", [&] { gstest::gradcheck(f, leaves); });
    }
    if ((row->flags & kGradGrad) == kGradGrad) {
      INFO(label(*row) << ": gradgradcheck");
      guarded(*row, "gradgradcheck", [&] { gstest::gradgradcheck(f, leaves); });
    }
    if (row->flags & kGradGradThrows) {
      INFO(label(*row) << ": second order is declared unsupported and must throw");
      CHECK_THROWS_AS(gstest::gradgradcheck(f, leaves), AutogradError);
    }
  }

  if (!cuda_available()) return;  // for_each_device has said so
  for (const OpCase* row : rows) {
    if (row->flags & kNoCuda) continue;
    INFO(label(*row) << ": CPU vs CUDA, float32, same seeded inputs");
    guarded(*row, "cpu vs cuda", [&] {
      std::vector<Tensor> on_cpu = stored_inputs(*row, DType::f32, Device::cpu());
      std::vector<Tensor> on_cuda = stored_inputs(*row, DType::f32, Device::cuda());
      gstest::Fn f = fn_over_grads(*row, {{DeviceType::CPU, on_cpu}, {DeviceType::CUDA, on_cuda}});
      std::vector<Tensor> leaves = grad_leaves(*row, on_cpu);
      if ((row->flags & kGrad) && !leaves.empty()) {
        gstest::expect_cpu_cuda_match(f, leaves, row->f32);
      } else {
        autograd::NoGradGuard ng;
        auto c = gstest::compare(f(grad_leaves(*row, on_cuda)).cpu(), f(leaves), row->f32);
        INFO(c.shape_msg << " worst at " << c.worst_index << ": " << c.a_val << " vs " << c.b_val);
        CHECK(c.ok);
      }
    });
  }
}

// ---- one doctest test case per op, registered from the table --------------------------------
constexpr size_t kMaxOps = 160;
std::vector<std::string>& op_names() {
  static std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const OpCase& r : table())
      if (std::find(n.begin(), n.end(), r.op) == n.end()) n.push_back(r.op);
    return n;
  }();
  return names;
}
std::vector<std::string>& test_names() {
  static std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const std::string& op : op_names()) n.push_back("backend/" + op);
    return n;
  }();
  return names;
}

template <size_t I>
void run_nth() {
  run_op(op_names().at(I));
}

template <size_t... I>
constexpr std::array<void (*)(), sizeof...(I)> make_runners(std::index_sequence<I...>) {
  return {&run_nth<I>...};
}

void capacity_exceeded() {
  FAIL("the op table has " << op_names().size() << " ops; raise kMaxOps in tests/backend/runner.cpp");
}

const int registered = [] {
  static constexpr auto runners = make_runners(std::make_index_sequence<kMaxOps>{});
  const auto& names = test_names();
  for (size_t i = 0; i < names.size() && i < kMaxOps; ++i)
    doctest::detail::regTest(doctest::detail::TestCase(runners[i], __FILE__, unsigned(100000 + i),
                                                       doctest_detail_test_suite_ns::getCurrentTestSuite()) *
                             names[i].c_str());
  if (names.size() > kMaxOps)
    doctest::detail::regTest(doctest::detail::TestCase(&capacity_exceeded, __FILE__, 99999,
                                                       doctest_detail_test_suite_ns::getCurrentTestSuite()) *
                             "backend/capacity");
  return 0;
}();

// ---- coverage ---------------------------------------------------------------------------------
// Function names declared at namespace scope in the public ops headers: lines that start (no
// indentation) with a return type and a name followed by '('.
std::map<std::string, std::string> declared_ops() {
  std::map<std::string, std::string> r;  // name -> header
  const std::regex decl(R"(^(?:const\s+)?[A-Za-z_][\w:<>,]*(?:\s*[&*])?\s+([a-z_][a-z0-9_]*)\s*\()");
  std::filesystem::path dir = std::filesystem::path(GS_SOURCE_ROOT) / "include/gradstyle/ops";
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".hpp") continue;
    std::ifstream in(e.path());
    std::string line;
    while (std::getline(in, line)) {
      std::smatch m;
      if (line.rfind("//", 0) == 0 || line.rfind("#", 0) == 0) continue;
      if (std::regex_search(line, m, decl)) r[m[1]] = e.path().filename().string();
    }
  }
  return r;
}

}  // namespace

TEST_CASE("backend/coverage: every public op has a row or a reasoned exclusion") {
  auto declared = declared_ops();
  // The scan must see the headers (a moved folder must not make this test vacuous).
  REQUIRE(declared.size() > 80);
  REQUIRE(declared.count("conv2d") == 1);
  REQUIRE(declared.count("selective_attention_with_stats") == 1);
  std::set<std::string> covered;
  for (const OpCase& r : table()) {
    covered.insert(r.op);
    covered.insert(r.covers.begin(), r.covers.end());
  }
  std::set<std::string> excluded;
  for (const Exclusion& e : table_exclusions()) excluded.insert(e.name);
  for (const auto& [name, header] : declared) {
    INFO("ops/" << header << " declares " << name << "(): add a row to tests/backend/op_table.cpp "
                << "(or, for a non-tensor function, an entry with its reason to table_exclusions())");
    CHECK((covered.count(name) + excluded.count(name)) == 1);
  }
  for (const std::string& name : covered) {
    INFO("the table names " << name << ", which no public ops header declares (typo or removed op?)");
    CHECK(declared.count(name) == 1);
  }
  for (const std::string& name : excluded) {
    INFO("exclusion " << name << " is stale: it is not declared, or it has a row");
    CHECK(declared.count(name) == 1);
    CHECK(covered.count(name) == 0);
  }
}

TEST_CASE("backend/poison: fresh CPU storages start as NaN inside a PoisonScope") {
  if (!cpu_poison_built()) {
    MESSAGE("CPU allocation poisoning is off in this build (AddressSanitizer owns the allocator)");
    return;
  }
  CHECK(cpu_poison_works());
}

}  // namespace gsbackend
