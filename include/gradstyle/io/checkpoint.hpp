#pragma once
// The one place that decides what a weights file is (FORMATS.md §1): the format comes from the
// first bytes, never from the extension, and a zip is an .npz exactly when every member is a
// "*.npy" array (is_npz_archive); any other zip is read as a PyTorch checkpoint, whose reader
// then says what is missing. Every loader, `gradstyle info` and the tensor bridge open files here.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "gradstyle/io/file.hpp"
#include "gradstyle/io/py_value.hpp"
#include "gradstyle/io/raw_tensor.hpp"
#include "gradstyle/io/torch_pt.hpp"

namespace gradstyle::io {

class ZipArchive;

enum class CheckpointKind { PtZip, PtLegacy, Safetensors, Npz, Npy };
const char* checkpoint_kind_name(CheckpointKind k);  // "PyTorch zip checkpoint", ...

// True when the archive is a NumPy .npz: at least one member and every member named "*.npy".
bool is_npz_archive(const ZipArchive& zip);

struct CheckpointOptions {
  PtLoadOptions pt;
};

// A weights file read whole. Move-only: `tensors` points into the data this object owns.
struct Checkpoint {
  CheckpointKind kind = CheckpointKind::PtZip;
  std::string path;
  // Every tensor in file order under its flattened name: "a.b.c" for nested .pt dicts (see
  // flatten_tensors), the member name without ".npy" for .npz, the safetensors name, and
  // "array" for a lone .npy.
  std::vector<std::pair<std::string, const RawTensor*>> tensors;
  // The unpickled object tree of a .pt file (tensors materialised); null for the other kinds.
  PyValuePtr tree;
  PtCheckpoint pt;                              // .pt details (root folder, records, storages)
  std::map<std::string, std::string> metadata;  // safetensors __metadata__
  NamedTensors arrays;                          // owner of the tensors of the non-.pt kinds

  Checkpoint() = default;
  Checkpoint(Checkpoint&&) = default;
  Checkpoint& operator=(Checkpoint&&) = default;
  Checkpoint(const Checkpoint&) = delete;
  Checkpoint& operator=(const Checkpoint&) = delete;

  bool is_pt() const { return kind == CheckpointKind::PtZip || kind == CheckpointKind::PtLegacy; }
};

// Detects the kind of a file from its bytes. FormatError naming the file and what it really is
// (HTML page, Git LFS pointer, image, ...) when it is no checkpoint kind.
CheckpointKind detect_checkpoint_kind(ByteSpan data, const std::string& name);

// Opens and fully reads a checkpoint of any kind. IOError when it cannot be read, FormatError for
// anything malformed or refused.
Checkpoint open_checkpoint(const std::string& path, const CheckpointOptions& opts = {});

}  // namespace gradstyle::io
