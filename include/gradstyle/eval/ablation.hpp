#pragma once
// The ground-truth benchmark of the toyfaces bundle (docs/results.md, `gradstyle results`):
// reconstruction and editing errors against rendered ground truth for the encoder alone and for
// inference-time variants of the trained GradStyle network:
//
//   reconstruction: e4e | GRM stages 1..k only (k < K; later stages pass through) | GradStyle (all K)
//   edits:          source (no edit) | e4e | unaligned residuals (HFGI-like: the inversion's F_m
//                   injected into the edited stream through the gate, no Aligner) | GRM re-run on
//                   the edit (F_m recomputed from T_m and the edited features) | GradStyle (GRM + GAM)
//
// Every variant uses the same trained weights; what a variant drops was trained with it, so these
// are contribution measurements, not re-trained ablations (the paper's Tables 3/4 retrain).
#include <string>
#include <vector>

#include "gradstyle/eval/toyfaces_demo.hpp"

namespace gradstyle::eval {

struct AblationOptions {
  int64_t identities = 32;  // held-out identities heldout_index(0 .. identities-1)
  uint64_t seed = 0;
  int64_t batch = 8;
  std::vector<std::string> attributes{"smile", "age", "yaw", "eye_openness"};
  // Fractions of the bundle's edit delta per attribute; negative ones edit the other way (frown,
  // turn the other side). An edit that would take the attribute out of its toyfaces range (age
  // below 0, eye openness above 1) is skipped and listed in AblationResult::skipped.
  std::vector<double> magnitudes{-1.0, -0.5, 0.5, 1.0};
};

struct AblationRow {
  std::string task;     // "reconstruction" or "edit:<attr>"
  double delta = 0;     // attribute change of the edit (0 for reconstruction)
  std::string variant;  // see the header comment
  double l2 = 0, psnr = 0, ssim = 0;  // means over the identities, uint8-quantised images (SPEC D.2)
  double id = 0;  // toy-ID cosine to the truth, mean over the identities (0 when the bundle has no ID network)
};

struct AblationResult {
  std::vector<AblationRow> rows;
  int64_t identities = 0;
  double seconds = 0;
  std::vector<std::string> skipped;  // "age -0.80": edits outside the attribute's range
  bool has_id = false;               // the bundle had the toy identity network: rows carry `id`
  // Mean over every edit row of a variant (L2); 0 when it has none.
  double mean_edit_l2(const std::string& variant) const;
  const AblationRow* find(const std::string& task, double delta, const std::string& variant) const;
};

AblationResult run_toyfaces_ablation(ToyBundle& b, const AblationOptions& o);

// docs/results.md: the tables, the two claims checked (GRM's reconstruction gain, GAM vs
// unaligned injection on edits) and how the numbers were made (`command`, the bundle's training).
std::string ablation_markdown(const ToyBundle& b, const AblationResult& r, const std::string& command);

}  // namespace gradstyle::eval
