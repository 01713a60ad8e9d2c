#include "gradstyle/models/editing.hpp"

#include <cctype>
#include <sstream>

#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/reduce.hpp"
#include "gradstyle/ops/shape.hpp"
#include "models/detail/loader_util.hpp"

namespace gradstyle::models::editing {

using detail::quoted;

namespace {

void check_w_plus(const Tensor& w, const char* op) {
  GS_CHECK(w.defined() && w.dim() == 3 && is_floating(w.dtype()), ShapeError, op,
           ": w_plus must be a float tensor [B, N, D], got ",
           w.defined() ? shape_str(w.shape()) + " " + dtype_name(w.dtype()) : std::string("undefined"));
}

// Any float tensor as w's dtype on w's device (differentiable).
Tensor like(const Tensor& t, const Tensor& w) { return t.to(w.dtype()).to(w.device()); }

}  // namespace

// ---- InterFaceGAN ---------------------------------------------------------------------------------

namespace {

// direction as [1, 1, D] (every row) or [1, N, D] (row by row).
Tensor direction_3d(const Tensor& w, const Tensor& d) {
  const int64_t N = w.size(1), D = w.size(2);
  GS_CHECK(d.defined(), ShapeError, "interfacegan_edit: undefined direction");
  const Shape& s = d.shape();
  const bool all_rows = (s == Shape{D}) || (s == Shape{1, D});
  const bool per_row = (s == Shape{N, D}) || (s == Shape{1, N, D});
  GS_CHECK(all_rows || per_row, ShapeError, "interfacegan_edit: direction ", shape_str(s), " does not fit w_plus ",
           shape_str(w.shape()), " (expected [1, ", D, "] for all rows or [1, ", N, ", ", D, "] per row)");
  return reshape(like(d, w), {1, all_rows ? 1 : N, D});
}

}  // namespace

Tensor interfacegan_edit(const Tensor& w_plus, const Tensor& direction, double alpha) {
  check_w_plus(w_plus, "interfacegan_edit");
  return w_plus + direction_3d(w_plus, direction) * alpha;
}

Tensor interfacegan_edit(const Tensor& w_plus, const Tensor& direction, const Tensor& alpha) {
  check_w_plus(w_plus, "interfacegan_edit");
  GS_CHECK(alpha.defined() && alpha.numel() == w_plus.size(0) && alpha.dim() <= 1, ShapeError,
           "interfacegan_edit: alpha must hold one value per sample ([", w_plus.size(0), "]), got ",
           alpha.defined() ? shape_str(alpha.shape()) : std::string("undefined"));
  return w_plus + direction_3d(w_plus, direction) * reshape(like(alpha, w_plus), {w_plus.size(0), 1, 1});
}

Tensor load_interfacegan_direction(const std::string& path, Device device) {
  detail::LoadedFile f = detail::load_file(path, Device::cpu());
  f.tree.reset();
  GS_CHECK(f.tensors.size() == 1, FormatError, quoted(path), ": an InterFaceGAN direction file holds one tensor, found ",
           f.tensors.size(), " (entries: ", f.entries, ")");
  Tensor d = f.tensors.begin()->second;
  GS_CHECK(is_floating(d.dtype()) && d.numel() > 0, FormatError, quoted(path), ": the direction is ",
           dtype_name(d.dtype()), " ", shape_str(d.shape()), ", expected a float tensor such as [1, 512]");
  return d.to(DType::f32).contiguous().to(device);
}

// ---- GANSpace -------------------------------------------------------------------------------------

void GanspacePCA::validate(const std::string& name) const {
  GS_CHECK(mean.defined() && comp.defined() && stdev.defined(), ShapeError, name, ": mean, comp and std are required");
  const int64_t D = mean.size(-1), K = comp.size(0);
  const bool mean_ok = (mean.dim() == 2 && mean.size(0) == 1) || mean.dim() == 1;
  const bool comp_ok = (comp.dim() == 3 && comp.size(1) == 1 && comp.size(2) == D) || (comp.dim() == 2 && comp.size(1) == D);
  const bool std_ok = stdev.dim() == 1 && stdev.size(0) == K;
  GS_CHECK(mean_ok && comp_ok && std_ok && K >= 1 && D >= 1, ShapeError, name, ": expected mean [1, D], comp [K, 1, D] and std [K], got mean ",
           shape_str(mean.shape()), ", comp ", shape_str(comp.shape()), ", std ", shape_str(stdev.shape()));
}

GanspacePCA GanspacePCA::to(Device d) const { return {mean.to(d), comp.to(d), stdev.to(d)}; }

GanspacePCA GanspacePCA::load(const std::string& path, Device device) {
  detail::LoadedFile f = detail::load_file(path, Device::cpu(), {"mean", "comp", "std"});
  f.tree.reset();
  GanspacePCA p;
  for (const char* k : {"mean", "comp", "std"})
    GS_CHECK(f.tensors.count(k), FormatError, quoted(path), ": no '", k,
             "' entry (a GANSpace PCA file holds mean, comp and std; entries: ", f.entries, ")");
  p.mean = f.tensors["mean"].to(DType::f32).contiguous();
  p.comp = f.tensors["comp"].to(DType::f32).contiguous();
  p.stdev = f.tensors["std"].to(DType::f32).contiguous();
  p.validate(quoted(path));
  return p.to(device);
}

Tensor ganspace_edit(const Tensor& w_plus, const GanspacePCA& pca, int64_t idx, int64_t start, int64_t end,
                     double strength) {
  check_w_plus(w_plus, "ganspace_edit");
  pca.validate("ganspace_edit: PCA");
  const int64_t B = w_plus.size(0), N = w_plus.size(1), D = w_plus.size(2), K = pca.num_components();
  GS_CHECK(pca.dim() == D, ShapeError, "ganspace_edit: the PCA is for ", pca.dim(), "-wide latents but w_plus is ",
           shape_str(w_plus.shape()));
  GS_CHECK(idx >= 0 && idx < K, IndexError, "ganspace_edit: component ", idx, " out of range [0, ", K, ")");
  GS_CHECK(0 <= start && start < end && end <= N, IndexError, "ganspace_edit: rows [", start, ", ", end,
           ") must satisfy 0 <= start < end <= ", N);
  const Tensor mean_v = reshape(like(pca.mean, w_plus), {1, D});                     // [1, D]
  const Tensor comp_i = reshape(select(like(pca.comp, w_plus), 0, idx), {1, D});     // [1, D]
  const Tensor std_i = select(like(pca.stdev, w_plus), 0, idx);                        // []
  const Tensor w0 = select(w_plus, 1, 0);                                            // [B, D]
  const Tensor coord = sum((w0 - mean_v) * comp_i, {1}, /*keepdim=*/true) / std_i;   // [B, 1]
  const Tensor delta = (strength - coord) * comp_i * std_i;                          // [B, D]
  std::vector<double> rows(size_t(N), 0.0);
  for (int64_t r = start; r < end; ++r) rows[size_t(r)] = 1.0;
  const Tensor mask = Tensor::from_vector<double>(rows, {1, N, 1}).to(w_plus.dtype()).to(w_plus.device());
  (void)B;
  return w_plus + mask * unsqueeze(delta, 1);
}

Tensor ganspace_edit(const Tensor& w_plus, const GanspacePCA& pca, const GanspaceEdit& e) {
  return ganspace_edit(w_plus, pca, e.idx, e.start, e.end, e.strength);
}

std::vector<GanspaceEdit> hfgi_ganspace_edits() {
  return {{"eyes", 54, 7, 8, 20.0}, {"beard", 58, 7, 9, -20.0}, {"lip", 34, 10, 11, 20.0}};
}

std::vector<GanspaceEdit> parse_ganspace_configs(const std::string& text) {
  std::vector<GanspaceEdit> out;
  std::istringstream in(text);
  std::string line;
  int line_no = 0;
  bool first = true;
  while (std::getline(in, line)) {
    ++line_no;
    for (char& c : line)
      if (c == '\t' || c == ',' || c == '\r') c = ' ';
    std::istringstream ls(line);
    std::vector<std::string> f;
    for (std::string tok; ls >> tok;) f.push_back(tok);
    if (f.empty() || f[0][0] == '#') continue;
    GanspaceEdit e;
    bool ok = f.size() == 5;
    if (ok) {
      try {
        size_t p1 = 0, p2 = 0, p3 = 0, p4 = 0;
        e.name = f[0];
        e.idx = std::stoll(f[1], &p1);
        e.start = std::stoll(f[2], &p2);
        e.end = std::stoll(f[3], &p3);
        e.strength = std::stod(f[4], &p4);
        ok = p1 == f[1].size() && p2 == f[2].size() && p3 == f[3].size() && p4 == f[4].size();
      } catch (const std::exception&) {
        ok = false;
      }
    }
    const bool header = first && !ok;
    first = false;
    if (header) continue;
    GS_CHECK(ok && e.idx >= 0 && 0 <= e.start && e.start < e.end, ValueError, "parse_ganspace_configs: line ", line_no,
             " is not 'name idx start end strength' with 0 <= start < end: '", line, "'");
    out.push_back(e);
  }
  return out;
}

}  // namespace gradstyle::models::editing
