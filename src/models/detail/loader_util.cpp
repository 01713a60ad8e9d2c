#include "models/detail/loader_util.hpp"

#include <map>

#include "gradstyle/io/checkpoint.hpp"
#include "gradstyle/io/tensor_bridge.hpp"

namespace gradstyle::models::detail {

int64_t max_index(const nn::StateDict& sd, const std::string& prefix) {
  int64_t best = -1;
  for (const auto& [k, v] : sd) {
    if (k.compare(0, prefix.size(), prefix) != 0) continue;
    size_t p = prefix.size(), q = p;
    while (q < k.size() && std::isdigit(static_cast<unsigned char>(k[q]))) ++q;
    if (q == p || q - p > 6 || (q < k.size() && k[q] != '.')) continue;
    best = std::max<int64_t>(best, std::stoll(k.substr(p, q - p)));
  }
  return best;
}

int64_t Vote::winner() const {
  int64_t best = -1;
  size_t best_n = 0;
  for (int64_t v : seen) {
    size_t n = size_t(std::count(seen.begin(), seen.end(), v));
    if (n > best_n) best = v, best_n = n;
  }
  return best;
}

std::string some_keys(const nn::StateDict& sd, size_t max_n) {
  std::string s;
  size_t i = 0;
  for (const auto& [k, v] : sd) {
    if (i == max_n) return s + ", ... (" + std::to_string(sd.size()) + " tensors)";
    s += (i++ ? ", " : "") + k;
  }
  return s.empty() ? "none" : s;
}

std::string describe_entries(const nn::StateDict& all) {
  std::vector<std::string> tops;
  std::map<std::string, size_t> counts;
  for (const auto& [k, v] : all) {
    const std::string top = k.substr(0, k.find('.'));
    if (!counts.count(top)) tops.push_back(top);
    ++counts[top];
  }
  std::string s;
  for (const auto& t : tops) {
    if (!s.empty()) s += ", ";
    s += t;
    if (counts[t] > 1) s += " (" + std::to_string(counts[t]) + " tensors)";
  }
  return s.empty() ? "no tensors" : s;
}

nn::StateDict sub_dict(const nn::StateDict& all, const std::string& prefix) {
  nn::StateDict sd;
  for (const auto& [k, v] : all)
    if (k.compare(0, prefix.size(), prefix) == 0) sd[k.substr(prefix.size())] = v;
  return sd;
}

LoadedFile load_file(const std::string& path, Device device, const std::vector<std::string>& prefixes) {
  auto wanted = [&](const std::string& name) {
    if (prefixes.empty()) return true;
    for (const auto& p : prefixes)
      if (name.compare(0, p.size(), p) == 0) return true;
    return false;
  };
  LoadedFile out;
  const io::Checkpoint ck = io::open_checkpoint(path);
  nn::StateDict names;  // names only (undefined tensors), for describe_entries
  for (const auto& [name, raw] : ck.tensors) {
    names[name] = Tensor();
    if (wanted(name)) out.tensors[name] = io::to_tensor(*raw, device, /*float16_to_float32=*/true);
  }
  out.entries = describe_entries(names);
  out.tree = ck.tree;
  return out;
}

void load_strict(nn::Module& m, const nn::StateDict& sd_in, const std::string& name, const std::string& what_was_built) {
  // Files written before PyTorch 0.4.1 (model_ir_se50.pth among them) have no BatchNorm
  // num_batches_tracked; PyTorch's loader fills it in, and so do we (it is only a counter).
  nn::StateDict sd = sd_in;
  const std::string nbt = "num_batches_tracked";
  for (const auto& [k, t] : m.state_dict())
    if (k.size() >= nbt.size() && k.compare(k.size() - nbt.size(), nbt.size(), nbt) == 0 && !sd.count(k))
      sd[k] = Tensor::zeros({}, {DType::i64});
  try {
    m.load_state_dict(sd, /*strict=*/true);
  } catch (const ShapeError& e) {
    throw ShapeError(name + ": " + e.what() + " (network inferred from the file: " + what_was_built + ")");
  }
}

}  // namespace gradstyle::models::detail
