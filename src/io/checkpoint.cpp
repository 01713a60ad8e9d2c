// open_checkpoint: format detection and whole-file reading for every weights format.
#include "gradstyle/io/checkpoint.hpp"

#include "gradstyle/core/error.hpp"
#include "gradstyle/io/npy.hpp"
#include "gradstyle/io/safetensors.hpp"
#include "gradstyle/io/sniff.hpp"
#include "gradstyle/io/zip.hpp"

namespace gradstyle::io {

const char* checkpoint_kind_name(CheckpointKind k) {
  switch (k) {
    case CheckpointKind::PtZip: return "PyTorch zip checkpoint";
    case CheckpointKind::PtLegacy: return "PyTorch legacy checkpoint";
    case CheckpointKind::Safetensors: return "safetensors";
    case CheckpointKind::Npz: return "NumPy .npz";
    case CheckpointKind::Npy: return "NumPy .npy";
  }
  return "?";
}

bool is_npz_archive(const ZipArchive& zip) {
  if (zip.entries().empty()) return false;
  for (const auto& e : zip.entries())
    if (e.name.size() <= 4 || e.name.compare(e.name.size() - 4, 4, ".npy") != 0) return false;
  return true;
}

CheckpointKind detect_checkpoint_kind(ByteSpan data, const std::string& name) {
  switch (sniff_bytes(data, data.size())) {
    case FileKind::Zip: return is_npz_archive(ZipArchive(data, name)) ? CheckpointKind::Npz : CheckpointKind::PtZip;
    case FileKind::LegacyTorch: return CheckpointKind::PtLegacy;
    case FileKind::Safetensors: return CheckpointKind::Safetensors;
    case FileKind::Npy: return CheckpointKind::Npy;
    default: break;
  }
  throw FormatError(refusal_message(name, sniff_bytes(data, data.size()), data,
                                    "a checkpoint (.pt, safetensors, .npz or .npy)"));
}

Checkpoint open_checkpoint(const std::string& path, const CheckpointOptions& opts) {
  MappedFile f(path);
  Checkpoint ck;
  ck.path = path;
  ck.kind = detect_checkpoint_kind(f.bytes(), path);
  switch (ck.kind) {
    case CheckpointKind::PtZip:
    case CheckpointKind::PtLegacy:
      ck.pt = parse_pt(f.bytes(), path, opts.pt);
      ck.tree = ck.pt.value;
      ck.tensors = flatten_tensors(*ck.tree);
      return ck;
    case CheckpointKind::Safetensors: {
      SafetensorsFile st(path);
      ck.metadata = st.metadata();
      ck.arrays = st.load_all();
      break;
    }
    case CheckpointKind::Npz: ck.arrays = parse_npz(f.bytes(), path); break;
    case CheckpointKind::Npy: ck.arrays.emplace_back("array", parse_npy(f.bytes(), path)); break;
  }
  for (const auto& [n, t] : ck.arrays) ck.tensors.emplace_back(n, &t);
  return ck;
}

}  // namespace gradstyle::io
