// embed: the smallest program an embedder writes. It is built against gradstyle_dep alone, the
// dependency that exports include/ and nothing else, so it compiling proves the public headers
// stand on their own (no src/, Eigen, stb or CUDA headers); the checks below make the build fail
// if one of those include paths leaks into gradstyle_dep again. Running it checks one value.
#include <cmath>
#include <cstdio>

#include "gradstyle/gradstyle.hpp"

#if __has_include("backend/kernels.hpp") || __has_include("cli/commands.hpp")
#error "gradstyle_dep exports src/: embedders must see include/ only"
#endif
#if __has_include(<Eigen/Core>) || __has_include(<stb_image.h>)
#error "gradstyle_dep exports Eigen or stb include paths: no public header needs them"
#endif

int main() {
  using namespace gradstyle;
  // d/dx sum(x^2) = 2x, through the public tensor, op and autograd API.
  Tensor x = Tensor::from_vector<float>({1, -2, 3}, {3}).requires_grad_();
  Tensor y = (x * x).sum();
  y.backward();
  std::vector<float> g = x.grad().to_vector<float>();
  bool ok = g.size() == 3 && g[0] == 2.0f && g[1] == -4.0f && g[2] == 6.0f && std::fabs(y.item() - 14.0) < 1e-6;
  std::printf("embed: sum(x^2) = %g, grad = [%g, %g, %g] -> %s\n", y.item(), g[0], g[1], g[2], ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
