#pragma once
// PyTorch checkpoints without Python: the zip format (torch >= 1.6, FORMATS.md §2) and the legacy
// stream (pre-1.6 or _use_new_zipfile_serialization=False, §3), detected from the first bytes.
// Storages are copied out of a read-only mapping; views (offsets, strides, shared storages) are
// materialised as contiguous RawTensors; location tags ('cuda:0') are ignored.
#include <memory>
#include <string>
#include <vector>

#include "gradstyle/io/file.hpp"
#include "gradstyle/io/pickle.hpp"
#include "gradstyle/io/py_value.hpp"

namespace gradstyle::io {

enum class PtFormat { Zip, Legacy };

struct PtLoadOptions {
  bool verify_crc = false;       // zip: check CRC-32 of every record (reads every byte)
  // Cap on the total bytes of materialised tensors; 0 = max(4 x file size, 64 MiB). Guards
  // against many views (or stride-0 expansions) of one storage blowing up memory.
  uint64_t max_tensor_bytes = 0;
  PickleLimits limits;
};

struct PtCheckpoint {
  PtFormat format = PtFormat::Zip;
  std::string root;                  // zip root folder ("archive", "mymodel"); empty for legacy
  int version = 0;                   // zip: <root>/version; legacy: 1001
  PyValuePtr value;                  // the unpickled object tree (tensors materialised)
  std::vector<std::string> records;  // zip entry names (for `inspect`)
  std::vector<std::string> globals;  // every global the pickle referenced
  std::vector<std::shared_ptr<StorageRef>> storages;
  std::vector<std::shared_ptr<TensorRef>> tensors;

  const PyValue& root_value() const { return *value; }
  // Flattened "a.b.c" -> tensor view of the whole tree (see flatten_tensors).
  std::vector<std::pair<std::string, const RawTensor*>> flat_tensors() const { return flatten_tensors(*value); }
};

// Loads a .pt/.pth file. Throws IOError (cannot open) or FormatError (anything malformed or
// refused, including non-checkpoint files: the message says what the file actually is).
PtCheckpoint load_pt(const std::string& path, const PtLoadOptions& opts = {});
// Same, from bytes in memory; `name` is used in messages.
PtCheckpoint parse_pt(ByteSpan data, const std::string& name, const PtLoadOptions& opts = {});

}  // namespace gradstyle::io
