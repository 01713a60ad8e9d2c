#pragma once
// Private helpers of every model loader (StyleGAN2 G/D, irse, e4e, lpips, arcface, editing):
// reading checkpoint files (through io::open_checkpoint), inspecting key shapes, and consistent
// messages. The one home of these helpers: loaders do not keep their own copies.
#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "gradstyle/io/py_value.hpp"
#include "gradstyle/nn/module.hpp"

namespace gradstyle::models::detail {

inline std::string quoted(const std::string& s) { return "'" + s + "'"; }

// Shape dimension `dim` of key k, or -1 when the key is absent or has too few dims.
inline int64_t dim_of(const nn::StateDict& sd, const std::string& k, int64_t dim) {
  auto it = sd.find(k);
  if (it == sd.end() || it->second.dim() <= dim) return -1;
  return it->second.size(dim);
}

inline bool has(const nn::StateDict& sd, const std::string& k) { return sd.count(k) != 0; }

// Largest i such that some key starts with prefix + i + "." (-1 when none).
int64_t max_index(const nn::StateDict& sd, const std::string& prefix);

// Several keys vote for one quantity; the most frequent positive value wins (ties: first seen).
// A single corrupted key is then reported by the strict load as a wrong shape instead of
// silently changing the architecture.
struct Vote {
  std::vector<int64_t> seen;
  void add(int64_t v) {
    if (v > 0) seen.push_back(v);
  }
  int64_t winner() const;
};

// "a, b, c, ... (N tensors)" for messages.
std::string some_keys(const nn::StateDict& sd, size_t max_n = 8);
// The top-level entries of a flattened file: "state_dict (812 tensors), latent_avg".
std::string describe_entries(const nn::StateDict& all);
// Entries under prefix (stripped), e.g. sub_dict(all, "state_dict.encoder.").
nn::StateDict sub_dict(const nn::StateDict& all, const std::string& prefix);

// A checkpoint read whole: every tensor under its flattened name ("state_dict.encoder.x.weight"),
// plus the unpickled tree for .pt files (null for safetensors / .npz / .npy). Only tensors whose names
// start with one of `prefixes` are converted (all when empty), so a 1 GB e4e file does not keep
// its generator half in memory twice.
struct LoadedFile {
  nn::StateDict tensors;
  io::PyValuePtr tree;
  std::string entries;  // describe_entries() over every tensor name of the file, for messages
};
LoadedFile load_file(const std::string& path, Device device, const std::vector<std::string>& prefixes = {});

// Loads sd strictly; a ShapeError names every missing, unexpected or misshapen key and is prefixed
// with `name` and followed by `what_was_built` (the inferred configuration).
void load_strict(nn::Module& m, const nn::StateDict& sd, const std::string& name, const std::string& what_was_built);

// Freezes a loaded frozen network: eval mode, parameters not requiring grad.
inline void freeze(nn::Module& m) {
  m.eval();
  m.requires_grad_(false);
}

}  // namespace gradstyle::models::detail
