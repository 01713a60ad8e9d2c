#pragma once
// A tiny generator and discriminator in rosinality's layout (g_ema.*, d.*), saved as one file: the
// "generator" of the GradStyle trainer's CLI tests (tests/train/test_train_cli.cpp,
// tests/dist/test_mpi_train.cpp); e4e_tiny.pt is its encoder.
#include <string>

#include "gradstyle/io/safetensors.hpp"
#include "gradstyle/io/tensor_bridge.hpp"
#include "models/gradstyle_fixture.hpp"

namespace gstest_train {

inline void write_tiny_gan(const std::string& path) {
  namespace sg = gradstyle::models::stylegan2;
  auto G = gstest_gs::tiny_generator(5);
  sg::DiscriminatorConfig dc;
  dc.size = 64;
  dc.channels = {{4, 8}, {8, 8}, {16, 8}, {32, 8}, {64, 8}};
  gradstyle::Generator init(11);
  sg::Discriminator D(dc, &init);
  gradstyle::io::NamedTensors all;
  for (auto& [k, t] : G->state_dict()) all.emplace_back("g_ema." + k, gradstyle::io::from_tensor(t));
  for (auto& [k, t] : D.state_dict()) all.emplace_back("d." + k, gradstyle::io::from_tensor(t));
  gradstyle::io::save_safetensors(path, all);
}

}  // namespace gstest_train
