// toyfaces renderer speed on one core: sample an identity and render it (training renders on the
// fly, so this bounds the data pipeline's cost per image).
#include <benchmark/benchmark.h>

#include <vector>

#include "gradstyle/data/toyfaces.hpp"

namespace tf = gradstyle::data::toyfaces;

static void BM_toyfaces_render(benchmark::State& st) {
  const int size = int(st.range(0));
  std::vector<float> buf(size_t(3) * size * size);
  uint64_t i = 0;
  for (auto _ : st) {
    const tf::ToyIdentity id = tf::sample_identity(0, i);
    tf::render_into(id, tf::sample_edit(0, i), size, buf.data());
    benchmark::DoNotOptimize(buf.data());
    i = (i + 1) % 256;  // a fixed mix of identities (hats, glasses, hair styles)
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_toyfaces_render)->Arg(32)->Arg(64)->Arg(128)->Unit(benchmark::kMicrosecond);

static void BM_toyfaces_sample_identity(benchmark::State& st) {
  uint64_t i = 0;
  for (auto _ : st) benchmark::DoNotOptimize(tf::sample_identity(0, i++));
}
BENCHMARK(BM_toyfaces_sample_identity)->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
