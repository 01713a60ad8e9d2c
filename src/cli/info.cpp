// gradstyle info FILE: what a checkpoint holds, read by io::open_checkpoint like every loader.
#include <iomanip>
#include <map>
#include <ostream>
#include <sstream>

#include "cli/commands.hpp"
#include "gradstyle/io/checkpoint.hpp"
#include "gradstyle/io/file.hpp"
#include "gradstyle/io/tensor_bridge.hpp"
#include "gradstyle/models/stylegan2.hpp"

namespace gradstyle::cli {

namespace sg = gradstyle::models::stylegan2;

namespace {

std::string count_str(int64_t n) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(2);
  if (n >= 1000000)
    os << double(n) / 1e6 << " M";
  else if (n >= 1000)
    os << double(n) / 1e3 << " k";
  else
    return std::to_string(n);
  return os.str();
}

std::string tensor_line(const io::RawTensor& t) {
  return std::string(dtype_name(t.dtype)) + " " + t.shape_str() + "  " + io::human_size(t.nbytes());
}

struct Printer {
  std::ostream& out;
  const InfoArgs& a;
  // Recognised networks: "entry" -> description (filled while walking).
  std::vector<std::pair<std::string, nn::StateDict>> candidates;

  // A dict whose values are all tensors is a state dict: summary line + (some) tensors.
  void state_dict(const std::string& name, const std::vector<std::pair<std::string, const io::RawTensor*>>& ts,
                  const std::string& indent) {
    int64_t values = 0;
    uint64_t bytes = 0;
    std::map<std::string, int> dtypes;
    for (const auto& [k, t] : ts) values += t->numel(), bytes += t->nbytes(), ++dtypes[dtype_name(t->dtype)];
    std::string dt;
    for (const auto& [d, c] : dtypes) dt += (dt.empty() ? "" : "/") + d;
    out << indent << name << ": " << ts.size() << " tensors, " << count_str(values) << " values, " << dt << " ("
        << io::human_size(bytes) << ")\n";
    const size_t show = a.max_tensors <= 0 ? ts.size() : std::min(ts.size(), size_t(a.max_tensors));
    size_t width = 0;
    for (size_t i = 0; i < show; ++i) width = std::max(width, ts[i].first.size());
    for (size_t i = 0; i < show; ++i)
      out << indent << "  " << std::left << std::setw(int(width)) << ts[i].first << std::right << "  "
          << tensor_line(*ts[i].second) << "\n";
    if (show < ts.size()) out << indent << "  ... " << ts.size() - show << " more (--max-tensors 0 lists all)\n";
    nn::StateDict sd;
    for (const auto& [k, t] : ts) sd[k] = Tensor::empty(t->shape, {.dtype = t->dtype});  // shapes only
    candidates.emplace_back(name, std::move(sd));
  }

  void value(const std::string& name, const io::PyValue& v, const std::string& indent, int depth) {
    using io::PyKind;
    if (v.is_tensor()) {
      out << indent << name << ": tensor " << tensor_line(v.as_tensor()) << "\n";
      return;
    }
    if (v.is_dict()) {
      bool all_tensors = !v.entries.empty();
      for (const auto& [k, x] : v.entries) all_tensors = all_tensors && x->is_tensor() && k->is(PyKind::String);
      if (all_tensors) {
        std::vector<std::pair<std::string, const io::RawTensor*>> ts;
        for (const auto& [k, x] : v.entries) ts.emplace_back(k->s, &x->as_tensor());
        state_dict(name, ts, indent);
        return;
      }
      out << indent << name << ": " << (v.ordered ? "OrderedDict" : "dict") << " with " << v.entries.size()
          << (v.entries.size() == 1 ? " entry\n" : " entries\n");
      if (depth >= 6) return;
      for (const auto& [k, x] : v.entries)
        value(k->is(PyKind::String) ? k->s : k->repr(40), *x, indent + "  ", depth + 1);
      return;
    }
    out << indent << name << ": " << v.repr(160) << "\n";
  }

  std::vector<std::string> recognised;
  void recognise(std::ostream& o) {
    bool any = false;
    for (const auto& [name, sd] : candidates) {
      std::string what;
      try {
        what = "StyleGAN2 generator (rosinality layout): " + sg::Generator::infer_config(sd, name).str();
      } catch (const gradstyle::Error&) {
      }
      if (what.empty()) try {
          what = "StyleGAN2 discriminator (rosinality layout): " + sg::Discriminator::infer_config(sd, name).str();
        } catch (const gradstyle::Error&) {
        }
      if (what.empty()) continue;
      if (!any) o << "recognised:\n";
      any = true;
      recognised.push_back(name);
      o << "  " << name << ": " << what << "\n";
    }
    if (!any) o << "recognised: no network gradstyle knows (StyleGAN2 G/D in rosinality layout)\n";
  }
};

// Strict-load check of the recognised networks with the real values (the file is read once).
void check_loads(const std::string& path, const std::vector<std::string>& entries, std::ostream& out) {
  const nn::StateDict all = io::load_state_dict_tensors(path);
  for (const auto& entry : entries) {
    nn::StateDict sd;
    if (entry == "top level" || entry == "(top level)") {
      sd = all;
    } else {
      for (const auto& [k, v] : all)
        if (k.rfind(entry + ".", 0) == 0) sd[k.substr(entry.size() + 1)] = v;
    }
    const std::string name = "'" + path + "' (" + entry + ")";
    try {
      sg::Generator::infer_config(sd, name);
      if (auto it = all.find("latent_avg"); it != all.end() && !sd.count("latent_avg")) sd["latent_avg"] = it->second;
      auto g = sg::Generator::from_state_dict(sd, name, {});
      out << "  " << entry << ": loads strictly, " << count_str(g->num_parameters()) << " parameters"
          << (g->w_avg.defined() ? ", latent_avg present" : ", no latent_avg (truncation will use mean_latent)")
          << (g->noise_generated() ? ", no noise buffers (older model.py)" : "") << "\n";
      continue;
    } catch (const FormatError&) {
      // not a generator: try the discriminator below
    } catch (const gradstyle::Error& e) {
      out << "  " << entry << ": does NOT load as a generator: " << e.what() << "\n";
      continue;
    }
    try {
      sg::Discriminator::infer_config(sd, name);
      auto d = sg::Discriminator::from_state_dict(sd, name, {});
      out << "  " << entry << ": loads strictly, " << count_str(d->num_parameters()) << " parameters\n";
    } catch (const FormatError&) {
    } catch (const gradstyle::Error& e) {
      out << "  " << entry << ": does NOT load as a discriminator: " << e.what() << "\n";
    }
  }
}

}  // namespace

int run_info(const InfoArgs& a, std::ostream& out) {
  if (a.file.empty()) throw UsageError("FILE is required");
  const io::Checkpoint ck = io::open_checkpoint(a.file);
  out << "file: " << a.file << " (" << io::human_size(io::MappedFile(a.file).size()) << ")\n";
  Printer p{out, a, {}};
  switch (ck.kind) {
    case io::CheckpointKind::PtZip:
      out << "format: PyTorch zip checkpoint (torch >= 1.6), root '" << ck.pt.root << "', version " << ck.pt.version
          << ", " << ck.pt.records.size() << " records\n";
      break;
    case io::CheckpointKind::PtLegacy:
      out << "format: PyTorch legacy stream (torch < 1.6 or _use_new_zipfile_serialization=False)\n";
      break;
    case io::CheckpointKind::Safetensors:
      out << "format: safetensors, " << ck.tensors.size() << " tensors\n";
      for (const auto& [k, v] : ck.metadata) out << "metadata: " << k << " = " << v << "\n";
      break;
    case io::CheckpointKind::Npz: out << "format: NumPy .npz\n"; break;
    case io::CheckpointKind::Npy: out << "format: NumPy .npy\n"; break;
  }
  if (ck.is_pt()) {
    out << "storages: " << ck.pt.storages.size() << ", tensors: " << ck.pt.tensors.size() << "\n";
    p.value("top level", *ck.tree, "", 0);
  } else if (ck.kind == io::CheckpointKind::Npz) {
    p.state_dict("arrays", ck.tensors, "");
  } else if (ck.kind == io::CheckpointKind::Npy) {
    out << "array: " << tensor_line(*ck.tensors.front().second) << "\n";
  } else {
    // Group by top-level prefix so nested state dicts show like the .pt tree.
    std::map<std::string, std::vector<std::pair<std::string, const io::RawTensor*>>> groups;
    std::vector<std::string> order;
    for (const auto& [n, t] : ck.tensors) {
      const size_t dot = n.find('.');
      const std::string g = dot == std::string::npos ? "" : n.substr(0, dot);
      if (!groups.count(g)) order.push_back(g);
      groups[g].emplace_back(dot == std::string::npos ? n : n.substr(dot + 1), t);
    }
    for (const auto& g : order) p.state_dict(g.empty() ? "(top level)" : g, groups[g], "");
  }
  p.recognise(out);
  if (a.check && !p.recognised.empty() && (ck.is_pt() || ck.kind == io::CheckpointKind::Safetensors)) {
    out << "strict load check:\n";
    check_loads(a.file, p.recognised, out);
  }
  return 0;
}

}  // namespace gradstyle::cli
