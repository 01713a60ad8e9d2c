#include "models/gradstyle_config_json.hpp"

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace gradstyle::models::gsnet {

using json = nlohmann::json;

namespace {

const char* name_of(EresInput v) { return v == EresInput::Concat ? "concat" : "diff"; }
const char* name_of(PositionalEncoding v) { return v == PositionalEncoding::TwoD ? "2d" : "1d"; }
const char* name_of(AlignerOutput v) { return v == AlignerOutput::Value ? "value" : "query"; }

std::string blocks_str(const std::vector<int>& b) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < b.size(); ++i) s << (i ? ", " : "") << b[i];
  s << "]";
  return s.str();
}

// Typed reads of one key: ValueError naming the key and what was found.
int64_t get_int(const json& v, const std::string& key) {
  GS_CHECK(v.is_number_integer(), ValueError, "GradStyleConfig: key '", key, "' must be an integer, got ", v.dump());
  return v.get<int64_t>();
}
double get_num(const json& v, const std::string& key) {
  GS_CHECK(v.is_number(), ValueError, "GradStyleConfig: key '", key, "' must be a number, got ", v.dump());
  return v.get<double>();
}
bool get_bool(const json& v, const std::string& key) {
  GS_CHECK(v.is_boolean(), ValueError, "GradStyleConfig: key '", key, "' must be true or false, got ", v.dump());
  return v.get<bool>();
}
std::string get_choice(const json& v, const std::string& key, std::initializer_list<const char*> allowed) {
  std::string list;
  for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + "\"" + a + "\"";
  GS_CHECK(v.is_string(), ValueError, "GradStyleConfig: key '", key, "' must be one of ", list, ", got ", v.dump());
  const std::string s = v.get<std::string>();
  for (const char* a : allowed)
    if (s == a) return s;
  throw ValueError(err_msg("GradStyleConfig: key '", key, "' must be one of ", list, ", got \"", s, "\""));
}

}  // namespace

const std::vector<std::string>& GradStyleConfig::keys() {
  static const std::vector<std::string> k{
      "refined_blocks", "t_channels",     "grm_proj_kernel", "eres_levels",    "eres_input",
      "eres_interp_align_corners",        "gate_channels",   "gate_bias_init", "aligner_layers",
      "aligner_heads",  "aligner_mlp_ratio", "pe",           "pe_on_value",    "pe_temperature",
      "topk_mu",        "aligner_output"};
  return k;
}

void GradStyleConfig::validate() const {
  GS_CHECK(!refined_blocks.empty(), ValueError, "GradStyleConfig: key 'refined_blocks' is empty (at least one block)");
  for (size_t i = 0; i < refined_blocks.size(); ++i) {
    GS_CHECK(refined_blocks[i] >= 3, ValueError, "GradStyleConfig: key 'refined_blocks' ", blocks_str(refined_blocks),
             ": block ", refined_blocks[i], " is below 3 (SPEC B.1: blocks 1 and 2 run at 4 px)");
    GS_CHECK(i == 0 || refined_blocks[i] > refined_blocks[i - 1], ValueError, "GradStyleConfig: key 'refined_blocks' ",
             blocks_str(refined_blocks), " is not strictly increasing");
  }
  GS_CHECK(t_channels >= 1, ValueError, "GradStyleConfig: key 't_channels' must be >= 1, got ", t_channels);
  GS_CHECK(grm_proj_kernel >= 1 && grm_proj_kernel % 2 == 1, ValueError,
           "GradStyleConfig: key 'grm_proj_kernel' must be a positive odd kernel size, got ", grm_proj_kernel);
  GS_CHECK(eres_levels >= 0, ValueError, "GradStyleConfig: key 'eres_levels' must be >= 0, got ", eres_levels);
  GS_CHECK(gate_channels >= 0, ValueError, "GradStyleConfig: key 'gate_channels' must be >= 1 (or \"C\"), got ",
           gate_channels);
  GS_CHECK(std::isfinite(gate_bias_init), ValueError, "GradStyleConfig: key 'gate_bias_init' must be finite, got ",
           gate_bias_init);
  GS_CHECK(aligner_layers >= 1, ValueError, "GradStyleConfig: key 'aligner_layers' must be >= 1, got ", aligner_layers);
  GS_CHECK(aligner_heads >= 1, ValueError, "GradStyleConfig: key 'aligner_heads' must be >= 1, got ", aligner_heads);
  GS_CHECK(aligner_mlp_ratio >= 1, ValueError, "GradStyleConfig: key 'aligner_mlp_ratio' must be >= 1, got ",
           aligner_mlp_ratio);
  GS_CHECK(std::isfinite(pe_temperature) && pe_temperature > 0, ValueError,
           "GradStyleConfig: key 'pe_temperature' must be > 0, got ", pe_temperature);
  GS_CHECK(topk_mu > 0 && topk_mu <= 1, ValueError, "GradStyleConfig: key 'topk_mu' must be in (0, 1], got ", topk_mu);
}

GradStyleConfig::Stage block_input(const stylegan2::GeneratorConfig& g, int b) {
  GS_CHECK(b >= 1 && b <= g.num_layers(), IndexError, "GradStyleConfig: block ", b, " is outside 1..", g.num_layers(),
           " for a ", g.size, " px generator");
  // conv1 reads 4 px; the up-conv convs[2k] (b = 2k + 2) reads 4 * 2^k, convs[2k + 1] (b = 2k + 3) 8 * 2^k.
  const int64_t res = b == 1 ? 4 : (b % 2 == 0 ? (int64_t(4) << ((b - 2) / 2)) : (int64_t(8) << ((b - 3) / 2)));
  return {b, g.channels_at(res), res};
}

void GradStyleConfig::validate_stages(const std::vector<Stage>& st) const {
  GS_CHECK(st.size() == refined_blocks.size(), ValueError, "GradStyleConfig: ", st.size(),
           " stage widths for key 'refined_blocks' ", blocks_str(refined_blocks));
  for (size_t m = 0; m < st.size(); ++m) {
    const Stage& s = st[m];
    GS_CHECK(s.b == refined_blocks[m], ValueError, "GradStyleConfig: stage ", m, " is block ", s.b,
             " but key 'refined_blocks' says ", refined_blocks[m]);
    GS_CHECK(s.C >= 1 && s.R >= 2, ValueError, "GradStyleConfig: stage ", m, " (block ", s.b, ") has width ", s.C,
             " at ", s.R, " px");
    GS_CHECK(s.C % aligner_heads == 0, ValueError, "GradStyleConfig: key 'aligner_heads' = ", aligner_heads,
             " does not divide the width C = ", s.C, " of block ", s.b);
    const int64_t q = pe == PositionalEncoding::TwoD ? 4 : 2;
    GS_CHECK(s.C % q == 0, ValueError, "GradStyleConfig: key 'pe' = \"", name_of(pe), "\" needs the width to be a multiple of ",
             q, ", block ", s.b, " has C = ", s.C);
  }
}

std::vector<GradStyleConfig::Stage> GradStyleConfig::stages(const stylegan2::GeneratorConfig& g) const {
  validate();
  g.validate();
  std::vector<Stage> st;
  for (int b : refined_blocks) {
    GS_CHECK(b <= g.num_layers(), ValueError, "GradStyleConfig: key 'refined_blocks' ", blocks_str(refined_blocks),
             ": block ", b, " is outside [3, ", g.num_layers(), "] for a ", g.size, " px generator");
    st.push_back(block_input(g, b));
  }
  validate_stages(st);
  return st;
}

void to_json(json& j, const GradStyleConfig& c) {
  j = json::object();
  j["refined_blocks"] = c.refined_blocks;
  j["t_channels"] = c.t_channels;
  j["grm_proj_kernel"] = c.grm_proj_kernel;
  j["eres_levels"] = c.eres_levels;
  j["eres_input"] = name_of(c.eres_input);
  j["eres_interp_align_corners"] = c.eres_interp_align_corners;
  if (c.gate_channels == 0)
    j["gate_channels"] = "C";
  else
    j["gate_channels"] = c.gate_channels;
  j["gate_bias_init"] = c.gate_bias_init;
  j["aligner_layers"] = c.aligner_layers;
  j["aligner_heads"] = c.aligner_heads;
  j["aligner_mlp_ratio"] = c.aligner_mlp_ratio;
  j["pe"] = name_of(c.pe);
  j["pe_on_value"] = c.pe_on_value;
  j["pe_temperature"] = c.pe_temperature;
  j["topk_mu"] = c.topk_mu;
  j["aligner_output"] = name_of(c.aligner_output);
}

void from_json(const json& j, GradStyleConfig& out) {
  GS_CHECK(j.is_object(), ValueError, "GradStyleConfig: expected a JSON object, got ", j.type_name());
  std::vector<std::string> unknown;
  const std::set<std::string> known(GradStyleConfig::keys().begin(), GradStyleConfig::keys().end());
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!known.count(it.key())) unknown.push_back(it.key());
  if (!unknown.empty()) {
    std::string list;
    for (const auto& k : unknown) list += (list.empty() ? "'" : ", '") + k + "'";
    throw ValueError(err_msg("GradStyleConfig: unknown key", unknown.size() > 1 ? "s " : " ", list,
                                   " (network keys: refined_blocks, t_channels, grm_proj_kernel, eres_levels, "
                                   "eres_input, eres_interp_align_corners, gate_channels, gate_bias_init, "
                                   "aligner_layers, aligner_heads, aligner_mlp_ratio, pe, pe_on_value, "
                                   "pe_temperature, topk_mu, aligner_output)"));
  }
  GradStyleConfig c;
  if (j.contains("refined_blocks")) {
    const json& v = j["refined_blocks"];
    GS_CHECK(v.is_array(), ValueError, "GradStyleConfig: key 'refined_blocks' must be a list of integers, got ",
             v.dump());
    c.refined_blocks.clear();
    for (const json& e : v) {
      GS_CHECK(e.is_number_integer() && e.get<int64_t>() >= INT32_MIN && e.get<int64_t>() <= INT32_MAX, ValueError,
               "GradStyleConfig: key 'refined_blocks' must be a list of integers, got ", v.dump());
      c.refined_blocks.push_back(int(e.get<int64_t>()));
    }
  }
  if (j.contains("t_channels")) c.t_channels = get_int(j["t_channels"], "t_channels");
  if (j.contains("grm_proj_kernel")) c.grm_proj_kernel = get_int(j["grm_proj_kernel"], "grm_proj_kernel");
  if (j.contains("eres_levels")) c.eres_levels = get_int(j["eres_levels"], "eres_levels");
  if (j.contains("eres_input"))
    c.eres_input = get_choice(j["eres_input"], "eres_input", {"concat", "diff"}) == "concat" ? EresInput::Concat
                                                                                              : EresInput::Diff;
  if (j.contains("eres_interp_align_corners"))
    c.eres_interp_align_corners = get_bool(j["eres_interp_align_corners"], "eres_interp_align_corners");
  if (j.contains("gate_channels")) {
    const json& v = j["gate_channels"];
    if (v.is_string()) {
      GS_CHECK(v.get<std::string>() == "C", ValueError,
               "GradStyleConfig: key 'gate_channels' must be a positive integer or \"C\", got ", v.dump());
      c.gate_channels = 0;
    } else {
      c.gate_channels = get_int(v, "gate_channels");
      GS_CHECK(c.gate_channels >= 1, ValueError,
               "GradStyleConfig: key 'gate_channels' must be a positive integer or \"C\", got ", v.dump());
    }
  }
  if (j.contains("gate_bias_init")) c.gate_bias_init = get_num(j["gate_bias_init"], "gate_bias_init");
  if (j.contains("aligner_layers")) c.aligner_layers = get_int(j["aligner_layers"], "aligner_layers");
  if (j.contains("aligner_heads")) c.aligner_heads = get_int(j["aligner_heads"], "aligner_heads");
  if (j.contains("aligner_mlp_ratio")) c.aligner_mlp_ratio = get_int(j["aligner_mlp_ratio"], "aligner_mlp_ratio");
  if (j.contains("pe"))
    c.pe = get_choice(j["pe"], "pe", {"2d", "1d"}) == "2d" ? PositionalEncoding::TwoD : PositionalEncoding::OneD;
  if (j.contains("pe_on_value")) c.pe_on_value = get_bool(j["pe_on_value"], "pe_on_value");
  if (j.contains("pe_temperature")) c.pe_temperature = get_num(j["pe_temperature"], "pe_temperature");
  if (j.contains("topk_mu")) c.topk_mu = get_num(j["topk_mu"], "topk_mu");
  if (j.contains("aligner_output"))
    c.aligner_output = get_choice(j["aligner_output"], "aligner_output", {"value", "query"}) == "value"
                           ? AlignerOutput::Value
                           : AlignerOutput::Query;
  c.validate();
  out = c;
}

std::string GradStyleConfig::to_json_text() const {
  json j;
  to_json(j, *this);
  return j.dump();
}

GradStyleConfig GradStyleConfig::from_json_text(const std::string& text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw FormatError(err_msg("GradStyleConfig: not valid JSON: ", e.what()));
  }
  GradStyleConfig c;
  from_json(j, c);
  return c;
}

}  // namespace gradstyle::models::gsnet
