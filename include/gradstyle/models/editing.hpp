#pragma once
// Latent edits applied to W+ codes (omertov/encoder4editing editings/; SPEC.md C.5).
//
//   Tensor d = editing::load_interfacegan_direction("interfacegan_directions/age.pt");  // [1, 512]
//   Tensor w_old = editing::interfacegan_edit(w_plus, d, 3.0);                          // w + 3 d
//   auto pca = editing::GanspacePCA::load("ganspace_pca/ffhq_pca.pt");
//   Tensor w_eyes = editing::ganspace_edit(w_plus, pca, {"eyes", 54, 7, 8, 20.0});
//
// InterFaceGAN: w_hat = w + alpha * d; a [1, D] (or [D]) direction is added to every row, a
// [1, N, D] (or [N, D]) one row by row.
// GANSpace (idx, start, end, strength), per sample b:
//   c = <w_b[0] - mean, comp[idx]> / std[idx]       (the coordinate is read from row 0)
//   w_hat_b[start:end] = w_b[start:end] + (strength - c) * comp[idx] * std[idx]
// (std is GanspacePCA::stdev)
// so the edit SETS the coordinate of rows start..end-1 to `strength`; other rows are unchanged.
//
// All edits are differentiable in w_plus (and in the direction / PCA tensors); any float dtype and
// device (the edit tensors are converted to w_plus's dtype and moved to its device).
#include <string>
#include <vector>

#include "gradstyle/core/tensor.hpp"

namespace gradstyle::models::editing {

// w_plus [B, N, D]; direction [D], [1, D], [N, D] or [1, N, D]. Throws ShapeError otherwise
// (naming both shapes).
Tensor interfacegan_edit(const Tensor& w_plus, const Tensor& direction, double alpha);
// Per-sample strengths: alpha [B] (a sweep in one batch).
Tensor interfacegan_edit(const Tensor& w_plus, const Tensor& direction, const Tensor& alpha);

// Reads an InterFaceGAN direction file (a .pt holding one tensor, e.g. age.pt [1, 512] or the
// cuda:0-tagged pose.pt [1, 18, 512]; a dict with a single tensor is accepted too) as float32.
// Throws IOError/FormatError (unreadable, no tensor, several tensors) naming the file.
Tensor load_interfacegan_direction(const std::string& path, Device device = Device::cpu());

struct GanspacePCA {
  Tensor mean;  // [1, D]
  Tensor comp;  // [K, 1, D]
  Tensor stdev; // [K]: the file's 'std' entry
  int64_t num_components() const { return comp.defined() ? comp.size(0) : 0; }
  int64_t dim() const { return mean.defined() ? mean.size(-1) : 0; }
  // ShapeError unless mean [1, D] (or [D]), comp [K, 1, D] (or [K, D]) and stdev [K] agree.
  void validate(const std::string& name = "GanspacePCA") const;
  GanspacePCA to(Device d) const;
  // Reads ffhq_pca.pt ({'mean', 'comp', 'std'}; comp is stored non-contiguous) as float32 and
  // validates it. Throws IOError/FormatError (unreadable, a missing entry, named) and ShapeError.
  static GanspacePCA load(const std::string& path, Device device = Device::cpu());
};

struct GanspaceEdit {
  std::string name;
  int64_t idx = 0, start = 0, end = 0;  // component; rows [start, end)
  double strength = 0;
};

// w_plus [B, N, D] -> edited [B, N, D]. Throws ShapeError (w_plus or the PCA of the wrong shape)
// and IndexError (idx outside [0, K), or not 0 <= start < end <= N), naming the values.
Tensor ganspace_edit(const Tensor& w_plus, const GanspacePCA& pca, int64_t idx, int64_t start, int64_t end,
                     double strength);
Tensor ganspace_edit(const Tensor& w_plus, const GanspacePCA& pca, const GanspaceEdit& edit);

// HFGI's named GANSpace edits: eyes (54, 7, 8, 20), beard (58, 7, 9, -20), lip (34, 10, 11, 20).
std::vector<GanspaceEdit> hfgi_ganspace_edits();
// Parses StyleRes' ganspace_configs.csv: one edit per line, "name idx start end strength" separated
// by tabs, commas or spaces; blank lines, '#' comments and a header line are skipped. Throws
// ValueError naming the line for a malformed one.
std::vector<GanspaceEdit> parse_ganspace_configs(const std::string& text);

}  // namespace gradstyle::models::editing
