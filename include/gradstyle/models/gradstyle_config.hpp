#pragma once
// The network keys of GradStyle's configuration (SPEC.md B.9) and the per-stage widths they give
// on a particular generator (B.1).
//
//   GradStyleConfig cfg = GradStyleConfig::from_json_text(R"({"refined_blocks": [3, 6, 8]})");
//   auto stages = cfg.stages(G.config());   // {b, C, R} per refined block; ValueError if invalid
//
// JSON: one flat object whose keys are exactly the member names below; every key is optional
// (missing keys keep their defaults) and an unknown key is a ValueError that names it.
// `gate_channels` is an integer or the string "C" (the module width of each stage, the default).
// The training keys of B.9 live in the trainer's configuration, which hands the keys listed by
// GradStyleConfig::keys() to from_json.
#include <cstdint>
#include <string>
#include <vector>


#include "gradstyle/models/stylegan2.hpp"

namespace gradstyle::models::gsnet {

enum class EresInput { Concat, Diff };        // B.3: cat(W_T T, W_f f) or W_T T - W_f f
enum class PositionalEncoding { TwoD, OneD };  // B.5: DETR 2-D sine at every layer, or Vaswani 1-D once
enum class AlignerOutput { Value, Query };     // B.5: F' from the last attention result, or from X

struct GradStyleConfig {
  std::vector<int> refined_blocks{3, 6, 8};  // 1-based StyledConv numbers, strictly increasing, >= 3
  int64_t t_channels = 512;                  // channels of the encoder maps T (e4e: 512)
  int64_t grm_proj_kernel = 1;               // W_T, W_f kernel (odd)
  int64_t eres_levels = 1;                   // down/up levels of E_res (>= 0)
  EresInput eres_input = EresInput::Concat;
  bool eres_interp_align_corners = true;
  int64_t gate_channels = 0;                 // C_g; 0 = the module width C ("C" in JSON)
  double gate_bias_init = -4.0;
  int64_t aligner_layers = 3;                // >= 1
  int64_t aligner_heads = 8;                 // must divide every stage's C
  int64_t aligner_mlp_ratio = 4;             // MLP hidden width = ratio * C
  PositionalEncoding pe = PositionalEncoding::TwoD;
  bool pe_on_value = false;
  double pe_temperature = 10000.0;
  double topk_mu = 0.25;                     // in (0, 1]
  AlignerOutput aligner_output = AlignerOutput::Value;

  int64_t num_modules() const { return int64_t(refined_blocks.size()); }
  // Gate width at module width C.
  int64_t gate_width(int64_t C) const { return gate_channels == 0 ? C : gate_channels; }

  // Checks what does not depend on a generator. ValueError naming the key and the value.
  void validate() const;

  struct Stage {
    int b;         // refined block (1-based StyledConv)
    int64_t C;     // channels of the feature entering StyledConv b
    int64_t R;     // its resolution
  };
  // validate() plus the generator-dependent rules (blocks <= num_layers, heads dividing C, the
  // positional encoding's divisibility of C), then the stage table. ValueError naming the key.
  std::vector<Stage> stages(const stylegan2::GeneratorConfig& g) const;
  // The same rules for explicit stage widths (a checkpoint's own table).
  void validate_stages(const std::vector<Stage>& st) const;

  std::string to_json_text() const;                                // one-line JSON object
  static GradStyleConfig from_json_text(const std::string& text);  // FormatError for bad JSON
  static const std::vector<std::string>& keys();                   // the accepted keys, in B.9 order

  bool operator==(const GradStyleConfig&) const = default;
};

// The feature entering StyledConv b of a generator with this configuration: {channels, resolution}
// (the same numbers as Generator::block_input, without building a generator). IndexError outside
// 1..num_layers.
GradStyleConfig::Stage block_input(const stylegan2::GeneratorConfig& g, int b);

}  // namespace gradstyle::models::gsnet
