// NpRandomState against values printed by NumPy 1.24 (/usr/bin/python3):
//   np.random.RandomState(s).randn(1, 512)[0][i]  and the sum of all 512 values.
#include <numeric>

#include "gradstyle/core/np_random.hpp"
#include "support/harness.hpp"

using namespace gradstyle;

namespace {
struct SeedCase {
  int64_t seed;
  double v0, v1, v2, v255, v510, v511, sum;
};
}  // namespace

TEST_CASE("core/np_random: MT19937 init_genrand reference outputs") {
  // Matsumoto & Nishimura's mt19937ar with init_genrand(5489): 3499211612, 581869302, 3890346734.
  NpRandomState rs(5489);
  CHECK(rs.next_u32() == 3499211612u);
  CHECK(rs.next_u32() == 581869302u);
  CHECK(rs.next_u32() == 3890346734u);
}

TEST_CASE("core/np_random: RandomState(seed).randn(1, 512) equals NumPy for seeds 0, 1, 42, 2^32-1") {
  const SeedCase cases[] = {
      {0, 1.764052345967664, 0.4001572083672233, 0.9787379841057392, 0.6947491436560059, 0.8952602728899299,
       1.3749640663929898, -13.203225372007179},
      {1, 1.6243453636632417, -0.6117564136500754, -0.5281717522634557, -1.0445893819077916, 1.693809113288081,
       0.19686977925029145, 25.26683518228805},
      {42, 0.4967141530112327, -0.13826430117118466, 0.6476885381006925, -0.48423407286625136, 0.2704568257798388,
       -0.05023810944913695, 2.262630726256273},
      {4294967295LL, 0.6484086742306527, 0.6693235306338161, -1.0805437227474493, 1.1589730511183858,
       -0.03243661465360325, -0.16334506047141822, 12.683985847647667},
  };
  for (const auto& c : cases) {
    CAPTURE(c.seed);
    NpRandomState rs(c.seed);
    auto z = rs.randn(512);
    // NumPy computes in double with the same libm operations: the values agree to the last bits.
    CHECK(z[0] == doctest::Approx(c.v0).epsilon(1e-15));
    CHECK(z[1] == doctest::Approx(c.v1).epsilon(1e-15));
    CHECK(z[2] == doctest::Approx(c.v2).epsilon(1e-15));
    CHECK(z[255] == doctest::Approx(c.v255).epsilon(1e-15));
    CHECK(z[510] == doctest::Approx(c.v510).epsilon(1e-15));
    CHECK(z[511] == doctest::Approx(c.v511).epsilon(1e-15));
    CHECK(std::accumulate(z.begin(), z.end(), 0.0) == doctest::Approx(c.sum).epsilon(1e-12));
  }
}

TEST_CASE("core/np_random: rand and randn share one stream, the cached gaussian survives across calls") {
  // r = RandomState(7); r.rand(3); r.randn(3); r.rand()
  NpRandomState rs(7);
  auto u = rs.rand(3);
  CHECK(u[0] == doctest::Approx(0.07630828937395717).epsilon(1e-15));
  CHECK(u[1] == doctest::Approx(0.7799187922401146).epsilon(1e-15));
  CHECK(u[2] == doctest::Approx(0.4384092314408935).epsilon(1e-15));
  auto g = rs.randn(3);
  CHECK(g[0] == doctest::Approx(0.09316606097975175).epsilon(1e-15));
  CHECK(g[1] == doctest::Approx(3.200914709117712).epsilon(1e-15));
  CHECK(g[2] == doctest::Approx(-0.1569886595634109).epsilon(1e-15));
  // The third gaussian cached a value; rand() does not consume it (NumPy keeps it too).
  CHECK(rs.random_sample() == doctest::Approx(0.49988250082555996).epsilon(1e-15));

  NpRandomState a(3), b(3);
  auto whole = a.randn(5);
  auto p1 = b.randn(2), p2 = b.randn(3);
  CHECK(whole[2] == p2[0]);  // a split draw continues the same pairs
  CHECK(whole[4] == p2[2]);
  CHECK(whole[1] == p1[1]);
}

TEST_CASE("core/np_random: seeds outside NumPy's range are refused") {
  GS_CHECK_THROWS_WITH(NpRandomState(-1), ValueError, "seed -1", "2^32 - 1");
  GS_CHECK_THROWS_WITH(NpRandomState(int64_t(1) << 32), ValueError, "4294967296");
}
