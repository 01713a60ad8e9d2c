#pragma once
// `gradstyle explain`: GradStyle's internals on one image, stage by stage (SPEC B.6): the e4e image,
// each refined block's residual F_m, its gate map g_m and the image once stages 1..m refine; for the
// editing stream the aligned residual F'_m and the Aligner's selected (top-k) keys for a few query
// positions, with their attention weights.
#include <iosfwd>
#include <string>
#include <vector>

#include "gradstyle/core/tensor.hpp"
#include "gradstyle/eval/inversion.hpp"

namespace gradstyle::cli {

struct ExplainQuery {
  int64_t token = 0;               // t = y * R + x on the stage's R x R grid
  std::vector<int64_t> keys;       // the keys any head selected, by weight (heads averaged), largest first
  std::vector<double> weights;     // their head-averaged weights (a row sums to 1)
};

struct ExplainStage {
  int block = 0;         // the refined block b_m
  int64_t R = 0, C = 0;  // its feature resolution and width
  Tensor residual;       // F_m [1, C, R, R]
  Tensor gate;           // g_m [1, Cg, R, R]
  Tensor image;          // the reconstruction with stages 1..m refining [1, 3, S, S]
  Tensor aligned;        // F'_m of the editing stream
  Tensor edit_gate;      // the editing stream's gate
  int64_t topk = 0;      // keys each head keeps per query: ceil(mu * R^2)
  std::vector<ExplainQuery> queries;  // of the Aligner's last layer
};

struct ExplainResult {
  Tensor source;      // the input at the generator's size [1, 3, S, S]
  Tensor e4e;         // G(w)
  Tensor rec;         // X^r (all stages)
  Tensor e4e_edit;    // G(w_hat), latent only
  Tensor edit;        // X^e, the editing stream
  std::vector<ExplainStage> stages;
};

// The query positions, as fractions (x, y) of the face square: eyes, nose, mouth in an FFHQ-aligned
// face.
std::vector<std::pair<double, double>> default_query_points();

// Runs the streams of a GradStyle model (kind GradStyle or Bundle) on x [1, 3, S, S] in [-1, 1]
// (the encoder's input) and the edit w + step * direction. UsageError for an e4e-only model.
ExplainResult explain(eval::InversionModel& m, const Tensor& x, const Tensor& direction, double step,
                      const std::vector<std::pair<double, double>>& query_points = default_query_points());

struct ExplainArgs {
  std::string checkpoint, image, save_dir;
  std::string edit_attribute;
  double edit_degree = 1.0;
  std::string direction, directions_dir;
  std::string generator, encoder;
  std::string device = "auto";
  bool overwrite = false;
  bool quiet = false;
};
// Writes SAVE/report.html, the images it shows and SAVE/attention.json.
int run_explain(const ExplainArgs& a, std::ostream& out, std::ostream& err);

}  // namespace gradstyle::cli
