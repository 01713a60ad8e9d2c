// Tests of the test harness itself: compare() must not let a mismatch hide behind a later element.
#include "support/harness.hpp"

using namespace gradstyle;

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

Tensor vec(const std::vector<double>& v) { return Tensor::from_vector(v, {int64_t(v.size())}); }
}  // namespace

TEST_CASE("support/harness: an infinite reference against a finite result fails, wherever it is") {
  // result [1, 2, 3, 4], reference [1, inf, 3, 4]: element 1 mismatches; the later, exact elements
  // must not overwrite it (inf/inf used to be a NaN ratio that the next element replaced).
  auto r = gstest::compare(vec({1, 2, 3, 4}), vec({1, kInf, 3, 4}), {});
  CHECK_FALSE(r.ok);
  CHECK(r.worst_index == 1);
  CHECK(r.worst_ratio == kInf);
  CHECK(r.a_val == 2.0);
  CHECK(r.b_val == kInf);
  // The same in a [2, 3] tensor, -inf reference in the middle.
  Tensor a = Tensor::from_vector(std::vector<double>{0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor b = Tensor::from_vector(std::vector<double>{0, 1, -kInf, 3, 4, 5}, {2, 3});
  auto r2 = gstest::compare(a, b, {});
  CHECK_FALSE(r2.ok);
  CHECK(r2.worst_index == 2);
}

TEST_CASE("support/harness: -inf against +inf fails; matching infinities pass") {
  auto opposite = gstest::compare(vec({-kInf, 0}), vec({kInf, 0}), {});
  CHECK_FALSE(opposite.ok);
  CHECK(opposite.worst_index == 0);
  auto finite_vs_inf_result = gstest::compare(vec({0, kInf, 0}), vec({0, 7, 0}), {});
  CHECK_FALSE(finite_vs_inf_result.ok);
  CHECK(finite_vs_inf_result.worst_index == 1);
  auto same = gstest::compare(vec({kInf, -kInf, 1.0}), vec({kInf, -kInf, 1.0}), {});
  CHECK(same.ok);
  CHECK(same.worst_ratio == 0.0);
  // Last element too (inf - inf used to give a NaN ratio there, which failed).
  CHECK(gstest::compare(vec({1.0, -kInf}), vec({1.0, -kInf}), {}).ok);
}

TEST_CASE("support/harness: NaN where the reference is finite fails; NaN where NaN passes") {
  auto nan_result = gstest::compare(vec({1, kNaN, 3}), vec({1, 2, 3}), {});
  CHECK_FALSE(nan_result.ok);
  CHECK(nan_result.worst_index == 1);
  auto nan_ref = gstest::compare(vec({1, 2, 3}), vec({1, kNaN, 3}), {});
  CHECK_FALSE(nan_ref.ok);
  CHECK(nan_ref.worst_index == 1);
  auto both = gstest::compare(vec({1, kNaN, 3}), vec({1, kNaN, 3}), {});
  CHECK(both.ok);
  // A NaN mismatch stays the worst even when a later element is merely out of tolerance.
  auto later = gstest::compare(vec({kNaN, 5}), vec({1, 4}), {});
  CHECK_FALSE(later.ok);
  CHECK(later.worst_index == 0);
}

TEST_CASE("support/harness: tolerance still scales with the reference") {
  // |a-b| = 1e-3 against atol 1e-5 + rtol 1e-4 * 100 = 1.001e-2: inside.
  CHECK(gstest::compare(vec({100.001}), vec({100}), {}).ok);
  auto r = gstest::compare(vec({0.0, 100.1}), vec({0.0, 100}), {});
  CHECK_FALSE(r.ok);
  CHECK(r.worst_index == 1);
  CHECK(r.worst_ratio == doctest::Approx(0.1 / (1e-5 + 1e-2)).epsilon(1e-6));
}
